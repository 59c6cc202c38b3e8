package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	ks "github.com/kardianos/service"
	"golang.org/x/term"

	"github.com/moatsandbox/moat/vmhost/daemon"
	"github.com/moatsandbox/moat/vmhost/state"
)

// DaemonConfig configures RunDaemon.
type DaemonConfig struct {
	Layout  *state.Layout
	Version string
	// LogLevel is debug, info, warn or error ("" is info).
	LogLevel string
	// LogMaxSize and LogKeep bound the daemon log (defaults
	// DefaultLogMaxSize, DefaultLogKeep).
	LogMaxSize int64
	LogKeep    int
	// Stderr also receives the log when it is a terminal (default os.Stderr).
	Stderr io.Writer
	// New makes the daemon (tests); default an ExecLauncher daemon.
	New func(l *state.Layout, logf func(string, ...any)) *daemon.Daemon
}

// ParseLevel parses a --log-level value.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// UnderManager reports which service manager runs this process ("" when
// none: a terminal, or the CLI's on-demand start).
func UnderManager() string {
	if m := os.Getenv(EnvManager); m != "" {
		return m
	}
	if runtime.GOOS == "windows" && !ks.Interactive() {
		return "windows"
	}
	return ""
}

// RunDaemon runs `moat vmhost` through github.com/kardianos/service: under
// the Windows SCM it answers the service protocol; elsewhere, and in a
// terminal (interactive mode), it serves until SIGTERM or SIGINT, or until
// the daemon ends itself (/v1/shutdown, reset). Sandboxes keep running
// either way.
//
// The log goes to the state directory's daemon log, rotated by size, and
// also to the terminal when there is one. Under a service manager, a
// daemon that finds another one serving waits for it to exit and takes
// over, instead of failing (which the manager would turn into a restart
// loop); in a terminal it fails with daemon.ErrAlreadyRunning.
func RunDaemon(ctx context.Context, cfg DaemonConfig) error {
	l := cfg.Layout
	level, err := ParseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	if err := l.EnsureHome(); err != nil {
		return err
	}
	rf, err := OpenRotating(l.DaemonLog(), cfg.LogMaxSize, cfg.LogKeep)
	if err != nil {
		return fmt.Errorf("open the daemon log: %w", err)
	}
	defer rf.Close()
	crashToLog(rf)
	var w io.Writer = rf
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w = io.MultiWriter(rf, stderr)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	prev := slog.Default()
	slog.SetDefault(logger) // also routes the log package (http.Server errors)
	defer slog.SetDefault(prev)
	logf := func(format string, a ...any) { logger.Info(fmt.Sprintf(format, a...)) }

	manager := UnderManager()
	var d *daemon.Daemon
	if cfg.New != nil {
		d = cfg.New(l, logf)
	} else {
		d = &daemon.Daemon{L: l, Launcher: &daemon.ExecLauncher{L: l}, Version_: cfg.Version, Logf: logf}
	}
	if manager == "" && state.Held(l.DaemonLock()) {
		return daemon.ErrAlreadyRunning
	}
	logger.Debug("starting", "pid", os.Getpid(), "manager", manager, "interactive", ks.Interactive(), "home", l.Home)

	p := &program{ctx: ctx, d: d, l: l, log: logger, wait: manager != "", done: make(chan struct{})}
	svcCfg := WindowsConfig(Spec{})
	svcCfg.Option = ks.KeyValue{"RunWait": p.runWait}
	s, err := ks.New(p, svcCfg)
	if err != nil {
		return err
	}
	err = s.Run()
	if err == nil {
		err = p.err
	}
	if err != nil && !errors.Is(err, daemon.ErrAlreadyRunning) {
		logger.Error("daemon failed", "err", err)
	}
	logger.Info("daemon exited", "pid", os.Getpid())
	return err
}

// crashToLog sends fatal errors (panics) to the log file too, unless
// stderr already is that file (the CLI's on-demand start, launchd).
func crashToLog(rf *RotatingFile) {
	set := func(f *os.File) { debug.SetCrashOutput(f, debug.CrashOptions{}) }
	if fi, err := os.Stderr.Stat(); err != nil || !sameFile(fi, rf.File()) {
		set(rf.File())
	}
	rf.OnRotate = set
}

func sameFile(fi os.FileInfo, f *os.File) bool {
	if f == nil {
		return false
	}
	gi, err := f.Stat()
	return err == nil && os.SameFile(fi, gi)
}

// program is the kardianos service.Interface of the daemon.
type program struct {
	ctx  context.Context
	d    *daemon.Daemon
	l    *state.Layout
	log  *slog.Logger
	wait bool // wait for another daemon to exit instead of failing

	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	stopping atomic.Bool // Stop was called
}

func (p *program) Start(ks.Service) error {
	ctx, cancel := context.WithCancel(p.ctx)
	p.cancel = cancel
	go func() {
		defer close(p.done)
		p.err = p.serve(ctx)
	}()
	if runtime.GOOS == "windows" {
		go p.exitWhenDone()
	}
	return nil
}

func (p *program) serve(ctx context.Context) error {
	for logged := false; ; {
		err := p.d.Serve(ctx)
		if !errors.Is(err, daemon.ErrAlreadyRunning) || !p.wait {
			return err
		}
		if !logged {
			p.log.Warn("another moat daemon is serving; waiting for it to exit", "pid", readPID(p.l.DaemonPID()), "socket", p.l.DaemonSocket())
			logged = true
		}
		for state.Held(p.l.DaemonLock()) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

// runWait is the RunWait option: it returns on SIGTERM or SIGINT, or when
// the daemon ends by itself.
func (p *program) runWait() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		p.log.Info("signal received; stopping the daemon (sandboxes keep running)", "signal", s.String())
	case <-p.done:
	}
}

func (p *program) Stop(ks.Service) error {
	p.stopping.Store(true)
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		return errors.New("the daemon did not stop within 15 s")
	}
}

// exitWhenDone: the Windows service loop ignores RunWait, so a daemon that
// ends by itself (/v1/shutdown) exits the process; the SCM then applies
// the restart-on-failure action.
func (p *program) exitWhenDone() {
	<-p.done
	if !p.stopping.Load() {
		time.Sleep(500 * time.Millisecond)
		if p.err != nil {
			p.log.Error("daemon failed", "err", p.err)
			fmt.Fprintf(os.Stderr, "moat: %v\n", p.err)
			os.Exit(1)
		}
		p.log.Info("daemon exited", "pid", os.Getpid())
		os.Exit(0)
	}
}

func readPID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Package supervisor is the small per-sandbox process (`moat _supervise
// NAME`) that owns one VM: it boots it with vm.Boot, holds the guest agent
// session, and serves a unix socket in the sandbox's run directory:
//
//	GET  /status          Status
//	POST /stop[?force=1]  stop the VM; the supervisor then exits
//	POST /exec            exec upgrade (see package api), relayed to the guest
//
// It runs in its own session (setsid) so the daemon can be killed, restarted
// or upgraded while sandboxes keep running. While it lives it holds the
// sandbox's supervisor lock: whether a supervisor exists is read from that
// lock (released by the kernel when the process dies), never from a file's
// contents. When the VM stops for any reason the supervisor exits.
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/template"
	"github.com/moatsandbox/moat/vmhost/vm"
)

// Config is what one supervisor needs.
type Config struct {
	Layout *state.Layout
	Name   string
	// Driver boots the VM; nil picks driver.Default().
	Driver driver.Driver
	// Assets are the guest assets; nil finds them (assets.Find).
	Assets *assets.Set
	// DataSize is the size of a new writable disk (default vm.DefaultDataDiskSize).
	DataSize int64
	// Logf logs a line; nil uses the log package.
	Logf func(format string, args ...any)
}

// State is the supervisor's own view of its VM.
type State string

const (
	Starting State = "starting"
	Running  State = "running"
	Stopping State = "stopping"
)

// Status answers GET /status.
type Status struct {
	State   State       `json:"state"`
	Runtime api.Runtime `json:"runtime"`
}

type sup struct {
	cfg   Config
	rec   *sandbox.Record
	paths state.Sandbox
	logf  func(string, ...any)

	mu      sync.Mutex
	st      Status
	v       *vm.VM
	stopReq chan bool // true = force
	// stopDuringBoot is set when a stop request cancelled the boot.
	stopDuringBoot bool
}

// Run supervises the named sandbox until its VM stops. It returns the boot
// error, if any, after recording it for the daemon.
func Run(ctx context.Context, cfg Config) (err error) {
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	reg := &sandbox.Registry{L: cfg.Layout}
	rec, err := reg.Get(cfg.Name)
	if err != nil {
		return err
	}
	paths := reg.Paths(rec)
	lk, err := lockWithRetry(paths.SupervisorLock(), 2*time.Second)
	if err != nil {
		return fmt.Errorf("sandbox %q already has a supervisor", cfg.Name)
	}
	defer lk.Unlock()
	s := &sup{cfg: cfg, rec: rec, paths: paths, logf: logf, stopReq: make(chan bool, 1)}
	s.st = Status{State: Starting, Runtime: api.Runtime{SupervisorPID: os.Getpid(), StartedAt: time.Now().UTC(), Phase: "starting"}}
	os.Remove(paths.LastError())
	defer func() {
		if err != nil {
			state.WriteFileAtomic(paths.LastError(), []byte(err.Error()), 0o600)
		}
	}()
	state.WriteFileAtomic(paths.SupervisorPID(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	defer os.Remove(paths.SupervisorPID())

	if err := cfg.Layout.EnsureRunDir(paths.RunDir); err != nil {
		return err
	}
	sock := paths.SupervisorSocket()
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	os.Chmod(sock, 0o600)
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		os.Remove(sock)
	}()
	closeHandoff, err := s.listenHandoff(paths.HandoffSocket())
	if err != nil {
		return fmt.Errorf("supervisor hand-off socket: %w", err)
	}
	defer closeHandoff()

	if err := s.boot(ctx); err != nil {
		s.mu.Lock()
		stopped := s.stopDuringBoot
		s.mu.Unlock()
		if stopped || ctx.Err() != nil {
			logf("boot cancelled by a stop request")
			return nil
		}
		logf("boot failed: %v", err)
		return err
	}
	logf("running: booted in %v (kernel %s)", s.v.BootTime.Round(time.Millisecond), s.v.Ready.Kernel)

	force := false
	select {
	case <-s.v.Machine.Done():
		logf("VM stopped by itself: %v", s.v.Machine.Err())
		if e := s.v.Machine.Err(); e != nil {
			return fmt.Errorf("VM stopped unexpectedly: %v", e)
		}
		return nil
	case force = <-s.stopReq:
	case <-ctx.Done():
	}
	s.set(func(st *Status) { st.State = Stopping })
	logf("stopping (force=%v)", force)
	if force {
		s.v.Machine.Kill()
		<-s.v.Machine.Done()
	} else {
		sctx, cancel := context.WithTimeout(context.Background(), driver.StopTimeout)
		s.v.Stop(sctx)
		cancel()
	}
	logf("stopped")
	return nil
}

func lockWithRetry(path string, d time.Duration) (*state.Lock, error) {
	deadline := time.Now().Add(d)
	for {
		l, err := state.TryLock(path)
		if err == nil || !errors.Is(err, state.ErrLocked) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sup) set(f func(*Status)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *sup) boot(ctx context.Context) error {
	d := s.cfg.Driver
	if d == nil {
		var err error
		if d, err = driver.Default(); err != nil {
			return err
		}
	}
	baseDisk := "" // the guest assets' base
	if s.rec.TemplateDigest != "" {
		baseDisk = template.Open(s.cfg.Layout.TemplatesDir()).DiskPath(s.rec.TemplateDigest)
		if _, err := os.Stat(baseDisk); err != nil {
			return fmt.Errorf("template %q: its base disk is gone from the template store (%v); load or pull the template again (`moat template pull`), or remove the sandbox with `moat rm %s`", s.rec.Template, err, s.rec.Name)
		}
	} else if s.rec.Template != "" && s.rec.Template != agents.BaseTemplate {
		return fmt.Errorf("template %q was not in the template store when sandbox %s was created; remove it (`moat rm %s`) and create it again with `moat run` (which pulls or loads the template)", s.rec.Template, s.rec.Name, s.rec.Name)
	}
	var ws []vm.Workspace
	assetsDir := ""
	if s.cfg.Assets != nil {
		assetsDir = s.cfg.Assets.Dir
	}
	prot := sandbox.ProtectedPaths(s.cfg.Layout.Home, s.cfg.Layout.Runtime, assetsDir)
	for _, w := range s.rec.Workspaces {
		if fi, err := os.Stat(w.Path); err != nil || !fi.IsDir() {
			return fmt.Errorf("workspace %s no longer exists (or is not a directory); recreate it, or remove the sandbox with `moat rm %s`", w.Path, s.rec.Name)
		}
		// Checked at create time too; again here, so a record changed on
		// disk cannot share moat's own files.
		if err := sandbox.CheckProtected(w, s.rec.Force, prot); err != nil {
			return fmt.Errorf("sandbox %s: %w; remove it with `moat rm %s`", s.rec.Name, err, s.rec.Name)
		}
		ws = append(ws, vm.Workspace{HostPath: w.Path, ReadOnly: w.ReadOnly})
	}
	// A boot is cancelled by a stop request as well as by ctx; the machine,
	// once started, is killed so that no wait inside the boot outlives it.
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mmu sync.Mutex
	var machine driver.Machine
	killed := false
	kill := func() {
		mmu.Lock()
		defer mmu.Unlock()
		killed = true
		if machine != nil {
			machine.Kill()
		}
	}
	d = &watchDriver{Driver: d, onStart: func(m driver.Machine) {
		mmu.Lock()
		defer mmu.Unlock()
		machine = m
		if killed {
			m.Kill()
		}
	}}
	go func() {
		select {
		case f := <-s.stopReq:
			s.mu.Lock()
			s.stopDuringBoot = true
			s.mu.Unlock()
			select {
			case s.stopReq <- f:
			default:
			}
			cancel()
			kill()
		case <-bctx.Done():
			if ctx.Err() != nil {
				kill()
			}
		}
	}()
	v, err := vm.Boot(bctx, d, vm.Options{
		Name:       s.rec.Name,
		Assets:     s.cfg.Assets,
		BaseDisk:   baseDisk,
		DataDisk:   s.paths.DataDisk(),
		DataSize:   s.cfg.DataSize,
		CPUs:       s.rec.CPUs,
		MemoryMiB:  s.rec.MemoryMiB,
		Workspaces: ws,
		Network:    true,
		AgentUID:   agentUID(primaryWorkspace(ws)),
		RunDir:     s.paths.VMRunDir(),
		ConsoleLog: s.paths.ConsoleLog(),
		Progress: func(p string) {
			s.logf("phase: %s", p)
			s.set(func(st *Status) { st.Runtime.Phase = p })
		},
	})
	if err != nil {
		return err
	}
	info := v.Machine.Info()
	s.mu.Lock()
	s.v = v
	s.st.State = Running
	s.st.Runtime.Phase = ""
	s.st.Runtime.Driver = info.Driver
	s.st.Runtime.VMPID = info.PID
	s.st.Runtime.Accel = info.Accel
	s.st.Runtime.BootMS = v.BootTime.Milliseconds()
	s.st.Runtime.Kernel = v.Ready.Kernel
	s.st.Runtime.AgentVersion = v.Ready.AgentVersion
	s.mu.Unlock()
	return nil
}

func (s *sup) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		st := s.st
		s.mu.Unlock()
		api.WriteJSON(w, st)
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		force := r.URL.Query().Get("force") == "1"
		select {
		case s.stopReq <- force:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /exec", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.ExecRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			api.WriteError(w, api.Errorf(api.CodeInvalid, "bad exec request: %v", err))
			return
		}
		s.mu.Lock()
		v, st := s.v, s.st.State
		s.mu.Unlock()
		if v == nil || st != Running {
			api.WriteError(w, fmt.Errorf("%w: sandbox %q is %s", api.ErrNotRunning, s.rec.Name, st))
			return
		}
		conn, err := api.Accept(w, r)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		s.logf("exec %s (tty=%v)", argv0(req.Argv), req.TTY) // never the env
		relayExec(context.Background(), conn, v.Agent, req)
	})
	return mux
}

func argv0(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return strings.Join(a[:1], " ")
}

// relayExec runs req in the guest and moves frames between conn and the
// guest process until it exits or conn goes away.
func relayExec(ctx context.Context, conn *api.Conn, ag *agentclient.Client, req protocol.ExecRequest) {
	defer conn.Close()
	w := protocol.NewWriter(conn)
	sendJSON := func(t protocol.FrameType, v any) { w.JSON(t, v) }
	var stdin io.Reader
	var pw *io.PipeWriter
	if req.Stdin {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		stdin = pr
		defer pw.Close()
	}
	p, err := ag.Start(ctx, req, agentclient.Stdio{
		Stdin:  stdin,
		Stdout: w.Stream(protocol.FrameStdout),
		Stderr: w.Stream(protocol.FrameStderr),
	})
	if err != nil {
		sendJSON(protocol.FrameError, protocol.Error{Message: err.Error()})
		return
	}
	sendJSON(protocol.FrameStarted, protocol.Started{PID: p.PID})
	go func() {
		for {
			f, err := protocol.ReadFrame(conn)
			if err != nil {
				select {
				case <-p.Done():
				default:
					p.Hangup() // client went away: like a terminal hang-up
				}
				if pw != nil {
					pw.Close()
				}
				return
			}
			switch f.Type {
			case protocol.FrameStdin:
				if pw != nil {
					pw.Write(f.Payload)
				}
			case protocol.FrameStdinEOF:
				if pw != nil {
					pw.Close()
				}
			case protocol.FrameResize:
				var ws protocol.WindowSize
				if f.Decode(&ws) == nil {
					p.Resize(ws.Rows, ws.Cols)
				}
			case protocol.FrameSignal:
				var sg protocol.Signal
				if f.Decode(&sg) == nil {
					p.Signal(sg.Signal)
				}
			}
		}
	}()
	st, err := p.Wait()
	if err != nil {
		sendJSON(protocol.FrameError, protocol.Error{Message: err.Error()})
		return
	}
	sendJSON(protocol.FrameExit, st)
}

// agentUID gives the guest's agent user the host uid that owns the user's
// files, so the agent can edit them: the caller's uid, or, when the caller is
// root, the owner of the primary workspace. A root-owned workspace (and
// Windows, uid -1) keeps the default, 1000.
func agentUID(workspace string) uint32 {
	if u := os.Getuid(); u > 0 {
		return uint32(u)
	}
	if workspace != "" {
		if u := fileOwner(workspace); u > 0 {
			return u
		}
	}
	return 0
}

// watchDriver reports the machine as soon as the driver started it.
type watchDriver struct {
	driver.Driver
	onStart func(driver.Machine)
}

func (w *watchDriver) Start(ctx context.Context, spec driver.Spec) (driver.Machine, error) {
	m, err := w.Driver.Start(ctx, spec)
	if err == nil {
		w.onStart(m)
	}
	return m, err
}

func primaryWorkspace(ws []vm.Workspace) string {
	if len(ws) == 0 {
		return ""
	}
	return ws[0].HostPath
}

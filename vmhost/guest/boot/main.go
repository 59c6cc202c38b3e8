//go:build linux

package boot

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/internal/version"
	"github.com/moatsandbox/moat/vmhost/guest/clock"
	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/guest/server"
)

// Main is PID 1: it sets the guest up, serves the agent channel forever and
// never returns (errors power the VM off).
func Main() {
	var tm struct{ init, mods, chan_ float64 }
	tm.init = clock.BootMS()
	log, console := ConsoleLogger()
	// A crash in any goroutine must reach the console before the kernel panics.
	_ = debug.SetCrashOutput(console, debug.CrashOptions{})
	a := &Agent{Log: log, Reaper: reaper.Default(), PID1: os.Getpid() == 1}
	log.Printf("%s starting (pid %d) at %.0fms", version.Version, os.Getpid(), tm.init)

	// Signals sent to PID 1 would otherwise terminate the Go runtime (and
	// panic the kernel). Catch them (not SIG_IGN: children would inherit it).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPWR)
	go func() {
		for s := range sigs {
			log.Printf("ignoring signal %v", s)
		}
	}()

	// Children inherit PID 1's limits; the kernel's default of 1024 open
	// files is too low for language servers, node and docker.
	if err := raiseNoFile(); err != nil {
		log.Printf("raise RLIMIT_NOFILE: %v", err)
	}

	if err := EarlyMounts(log); err != nil {
		a.Fatal(fmt.Errorf("early mounts: %w", err))
	}
	a.Release = Release()
	start := clock.BootMS()
	n, err := LoadModules(a.Release, log)
	if err != nil {
		a.Fatal(fmt.Errorf("load modules: %w", err))
	}
	tm.mods = clock.BootMS()
	log.Printf("modules loaded (%d) in %.0fms", n, tm.mods-start)

	if a.PID1 {
		go WatchPowerButton(log, func() { a.Shutdown(3 * time.Second) })
	}

	kind, serve, err := OpenChannel(5*time.Second, log)
	if err != nil {
		a.Fatal(err)
	}
	tm.chan_ = clock.BootMS()
	log.Printf("agent channel %s found at %.0fms", kind, tm.chan_)

	srv := &server.Server{
		Reaper:       a.Reaper,
		Root:         "/",
		Config:       a,
		Shutdown:     a.Shutdown,
		AgentVersion: version.Version,
		Kernel:       a.Release,
		Logf:         log.Printf,
	}
	srv.Timings.InitStartMS = tm.init
	srv.Timings.ModulesLoadedMS = tm.mods
	srv.Timings.ChannelOpenMS = tm.chan_
	serve(srv)
	a.Fatal(fmt.Errorf("agent channel %s stopped", kind))
}

func raiseNoFile() error {
	lim := unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		var n uint64
		if _, err := fmt.Sscanf(string(b), "%d", &n); err == nil && n > 0 && n < lim.Max {
			lim.Cur, lim.Max = n, n
		}
	}
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
}

// Package daemontest runs a real daemon in-process for tests, with
// supervisors as goroutines booting fake VMs (vmhost/driver/fakedriver).
package daemontest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/daemon"
	"github.com/moatsandbox/moat/vmhost/driver/fakedriver"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/supervisor/supervisortest"
)

// Launcher runs supervisors in-process with the fake driver.
type Launcher = supervisortest.Launcher

// Env is a running test daemon.
type Env struct {
	L        *state.Layout
	Driver   *fakedriver.Driver
	Launcher *Launcher
	Client   *api.Client
	Socket   string
}

// Start runs a daemon on a fresh home (also set as MOAT_HOME) until the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "moatt")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := state.New(home, filepath.Join(rt, "r"))
	t.Setenv(state.EnvHome, home)
	t.Setenv("MOAT_NO_AUTOSTART", "1") // never spawn the test binary as a daemon
	fd := &fakedriver.Driver{}
	la := &Launcher{L: l, Driver: fd, Assets: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon.Daemon{L: l, Launcher: la, Version_: "test", Logf: func(string, ...any) {}, PollInterval: 20 * time.Millisecond, StopTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	c := api.NewClient(l.DaemonSocket())
	for i := 0; ; i++ {
		if _, err := c.Version(context.Background()); err == nil {
			break
		}
		if i > 300 {
			t.Fatal("daemon did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		if l, err := c.List(context.Background()); err == nil {
			for _, s := range l {
				c.Stop(context.Background(), s.Name, true)
			}
		}
		cancel()
		<-done
		la.Wait()
		os.RemoveAll(rt)
	})
	return &Env{L: l, Driver: fd, Launcher: la, Client: c, Socket: l.DaemonSocket()}
}

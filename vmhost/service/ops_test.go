//go:build !windows

package service

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/state"
)

func TestHomeMatches(t *testing.T) {
	l, _ := state.New("/a/home", "/r")
	t.Setenv(state.EnvHome, "")
	if !HomeMatches(Status{}, l) {
		t.Error("default service, default CLI: should match")
	}
	if HomeMatches(Status{Home: "/other"}, l) || !HomeMatches(Status{Home: "/a/home/"}, l) {
		t.Error("explicit home")
	}
	t.Setenv(state.EnvHome, "/a/home")
	if HomeMatches(Status{}, l) {
		t.Error("a default-home service must not serve a CLI with MOAT_HOME set")
	}
}

// procManager is a Manager whose "service" is a daemon process of the test
// binary run with EnvManager set, as a service manager would run it.
type procManager struct {
	t         *testing.T
	bin, home string
	installed bool
	spec      Spec
	p         *daemonProc
}

func (m *procManager) Name() string { return "test" }
func (m *procManager) Install(ctx context.Context, s Spec) error {
	m.installed, m.spec = true, s
	return nil
}
func (m *procManager) Uninstall(ctx context.Context) error {
	m.Stop(ctx)
	m.installed = false
	return nil
}
func (m *procManager) running() bool { return m.p != nil && !m.p.exited(0) }
func (m *procManager) Start(ctx context.Context) error {
	if !m.running() {
		m.p = startDaemonProc(m.t, m.bin, m.home, EnvManager+"=test")
	}
	return nil
}
func (m *procManager) Stop(ctx context.Context) error {
	if m.running() {
		m.p.sigterm()
	}
	return nil
}
func (m *procManager) Restart(ctx context.Context) error { m.Stop(ctx); return m.Start(ctx) }
func (m *procManager) Status(ctx context.Context) Status {
	st := Status{Kind: "test service", Where: "/test/unit", Installed: m.installed, Home: m.home}
	if m.running() {
		st.Running, st.State, st.PID = true, "active", m.p.cmd.Process.Pid
	} else {
		st.State = "inactive"
	}
	return st
}

// TestOpsHandOverAndStatus: installing beside an on-demand daemon makes it
// exit and the service's daemon take over; status tells which is which;
// restart replaces the daemon; uninstall says how to remove sandboxes.
func TestOpsHandOverAndStatus(t *testing.T) {
	bin := testBinary(t)
	home := t.TempDir()
	l, _ := state.New(home, "")
	t.Setenv(state.EnvHome, home)
	t.Cleanup(func() { os.RemoveAll(l.Runtime) })
	ctx := context.Background()
	m := &procManager{t: t, bin: bin, home: home}
	var out bytes.Buffer
	o := &Ops{M: m, L: l, Out: &out, Wait: 10 * time.Second, Spec: &Spec{Exe: bin, Args: []string{"vmhost"}}}

	if err := o.Start(ctx); !IsNotInstalled(err) {
		t.Fatalf("start before install: %v", err)
	}
	o.Status(ctx)
	if s := out.String(); !strings.Contains(s, "service:    not installed") || !strings.Contains(s, "daemon:     not running") {
		t.Errorf("status, nothing installed:\n%s", s)
	}

	onDemand := startDaemonProc(t, bin, home)
	waitServing(t, l, onDemand.cmd.Process.Pid, 10*time.Second)
	out.Reset()
	o.Status(ctx)
	if s := out.String(); !strings.Contains(s, "started on demand") {
		t.Errorf("status, on-demand daemon:\n%s", s)
	}

	out.Reset()
	if err := o.Install(ctx); err != nil {
		t.Fatalf("install: %v\n%s", err, out.String())
	}
	if !onDemand.exited(5 * time.Second) {
		t.Fatal("the on-demand daemon is still running after install")
	}
	svcPID := m.p.cmd.Process.Pid
	s := out.String()
	for _, want := range []string{
		"installed the test service /test/unit",
		"stopped the on-demand daemon (pid " + itoa(onDemand.cmd.Process.Pid) + "); its sandboxes keep running",
		"the daemon runs under the service (pid " + itoa(svcPID) + ", moat " + binVersion + ")",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("install output lacks %q:\n%s", want, s)
		}
	}

	out.Reset()
	o.Status(ctx)
	s = out.String()
	for _, want := range []string{
		"service:    installed: test service /test/unit",
		"manager:    active, pid " + itoa(svcPID),
		"daemon:     running, pid " + itoa(svcPID) + ", moat " + binVersion + " (API v1), under the service",
		"socket:     " + l.DaemonSocket(),
		"log:        " + l.DaemonLog(),
		"sandboxes:  0, 0 running",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("status lacks %q:\n%s", want, s)
		}
	}

	// Installing again (an upgrade) restarts the service's daemon.
	out.Reset()
	if err := o.Install(ctx); err != nil {
		t.Fatalf("reinstall: %v\nlog:\n%s\nproc output:\n%s", err, readLog(t, l), m.p.out)
	}
	if !strings.Contains(out.String(), "updated the test service") || m.p.cmd.Process.Pid == svcPID {
		t.Errorf("reinstall did not update and restart (pid %d, was %d):\n%s", m.p.cmd.Process.Pid, svcPID, out.String())
	}

	out.Reset()
	if err := o.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	s = out.String()
	for _, want := range []string{"removed the test service /test/unit; its daemon stopped", "kept in " + home, "moat rm -f $(moat ls -q)", "moat reset"} {
		if !strings.Contains(s, want) {
			t.Errorf("uninstall output lacks %q:\n%s", want, s)
		}
	}
	if err := syscall.Kill(m.p.cmd.Process.Pid, 0); err == nil && !m.p.exited(time.Second) {
		t.Error("the service's daemon still runs after uninstall")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

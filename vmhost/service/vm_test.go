//go:build linux

package service

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/driver/drivertest"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
)

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// TestDaemonRestartKeepsSandbox boots a real sandbox (QEMU; `moat run -d
// shell DIR` when the binary is moat itself) under a daemon run in
// interactive mode, SIGTERMs the daemon, checks that the
// sandbox's supervisor and qemu keep running, and that a restarted daemon
// lists it running with the same processes — what a service restart or
// an upgrade does (KillMode=process signals only the daemon).
//
// It needs the guest assets (MOAT_GUEST_DIR; `make guest`) and qemu; it
// skips without them, or fails under MOAT_REQUIRE_VM=1.
func TestDaemonRestartKeepsSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM; skipped in -short mode")
	}
	drivertest.Assets(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil && os.Getenv(drivertest.RequireEnv) != "1" {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	bin := testBinary(t)
	home := t.TempDir()
	l, _ := state.New(home, "")
	ws := t.TempDir()
	ctx := context.Background()

	d := startDaemonProc(t, bin, home)
	c := waitServing(t, l, d.cmd.Process.Pid, 10*time.Second)
	var sup, vm int
	t.Cleanup(func() {
		// Never leave a VM behind: the supervisor's death takes qemu with it
		// (Pdeathsig); qemu is killed too in case it is not.
		for _, pid := range []int{sup, vm} {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(l.Runtime)
	})
	var name string
	if realMoat {
		// What a user types.
		run := exec.Command(bin, "run", "-d", "shell", ws)
		run.Env = daemonEnv(home)
		out, err := run.Output()
		if err != nil {
			t.Fatalf("moat run -d shell %s: %v\n%s\ndaemon log:\n%s", ws, err, out, readLog(t, l))
		}
		lines := strings.Fields(string(out))
		if len(lines) == 0 {
			t.Fatalf("moat run -d printed no name")
		}
		name = lines[len(lines)-1]
	} else {
		res, err := c.Create(ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: ws}}, Reuse: true})
		if err != nil {
			t.Fatal(err)
		}
		name = res.Sandbox.Name
		sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		if err := c.Start(sctx, name, func(p string) { t.Logf("boot: %s", p) }); err != nil {
			t.Fatalf("start %s: %v\ndaemon log:\n%s", name, err, readLog(t, l))
		}
	}
	before, err := c.Get(ctx, name)
	if err != nil || before.Status != api.StatusRunning || before.Runtime == nil {
		t.Fatalf("after start: %+v %v", before, err)
	}
	sup, vm = before.Runtime.SupervisorPID, before.Runtime.VMPID
	if !alive(sup) || !alive(vm) {
		t.Fatalf("supervisor %d / qemu %d not alive after start", sup, vm)
	}
	t.Logf("sandbox %s running: supervisor pid %d, qemu pid %d, booted in %d ms", name, sup, vm, before.Runtime.BootMS)

	d.sigterm()
	time.Sleep(time.Second)
	if !alive(sup) || !alive(vm) {
		t.Fatalf("SIGTERM to the daemon stopped the sandbox: supervisor %d alive=%v, qemu %d alive=%v", sup, alive(sup), vm, alive(vm))
	}

	d2 := startDaemonProc(t, bin, home)
	c = waitServing(t, l, d2.cmd.Process.Pid, 10*time.Second)
	ls, err := c.List(ctx)
	if err != nil || len(ls) != 1 {
		t.Fatalf("list after restart: %v %v", ls, err)
	}
	s := ls[0]
	if s.Name != name || s.Status != api.StatusRunning || s.Runtime == nil || s.Runtime.SupervisorPID != sup || s.Runtime.VMPID != vm {
		t.Fatalf("after the daemon restart: %+v (want %s running, supervisor %d, qemu %d)", s, name, sup, vm)
	}
	if !strings.Contains(readLog(t, l), "(1 sandboxes, 1 running)") {
		t.Errorf("the restarted daemon did not log the rediscovered sandbox:\n%s", readLog(t, l))
	}

	// Remove it through the restarted daemon: the VM and its supervisor go.
	if err := c.Remove(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; alive(sup) || alive(vm); i++ {
		if i > 100 {
			t.Fatalf("supervisor %d / qemu %d still alive after rm -f", sup, vm)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d2.sigterm()
}

package supervisor

import (
	"bytes"
	"context"
	"errors"
	"github.com/moatsandbox/moat/internal/testlog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/driver/fakedriver"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
)

func setup(t *testing.T) (*state.Layout, *sandbox.Record, state.Sandbox) {
	rt, err := os.MkdirTemp("/tmp", "moats")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	l, _ := state.New(t.TempDir(), filepath.Join(rt, "r"))
	reg := &sandbox.Registry{L: l}
	ws, _ := filepath.EvalSymlinks(t.TempDir())
	r, _, err := reg.Ensure(context.Background(), sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: ws}}, Reuse: true})
	if err != nil {
		t.Fatal(err)
	}
	return l, r, reg.Paths(r)
}

func waitState(t *testing.T, c *Client, want State) *Status {
	t.Helper()
	for i := 0; i < 500; i++ {
		if st, err := c.Status(context.Background()); err == nil && st.State == want {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("supervisor never reached %s", want)
	return nil
}

func TestRunExecStop(t *testing.T) {
	l, r, p := setup(t)
	fd := &fakedriver.Driver{BootDelay: 100 * time.Millisecond}
	done := make(chan error, 1)
	cfg := Config{Layout: l, Name: r.Name, Driver: fd, Assets: fakedriver.Assets(t.TempDir()), DataSize: 1 << 20, Logf: testlog.Func(t)}
	go func() { done <- Run(context.Background(), cfg) }()
	c := NewClient(p.SupervisorSocket())
	st := waitState(t, c, Running)
	if st.Runtime.SupervisorPID != os.Getpid() || st.Runtime.Driver != "fake" {
		t.Fatalf("status %+v", st)
	}
	if !state.Held(p.SupervisorLock()) {
		t.Fatal("lock not held while running")
	}
	// A second supervisor for the same sandbox refuses.
	if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "already has a supervisor") {
		t.Fatalf("second supervisor: %v", err)
	}
	// Exec through the socket, env in the body.
	conn, err := c.Exec(context.Background(), protocol.ExecRequest{Argv: []string{"env"}, Env: []string{"TOKEN=t0k"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.NewSession(conn)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if es, err := s.Wait(&out, nil); err != nil || es.Code != 0 || !strings.Contains(out.String(), "TOKEN=t0k") {
		t.Fatalf("exec: %q %+v %v", out.String(), es, err)
	}
	// The workspace reached the machine as a share at its own path.
	m := fd.Machines[0]
	if sp := m.Spec(); len(sp.Shares) != 1 || sp.Shares[0].HostPath != r.Workspace() || sp.RunDir != p.VMRunDir() {
		t.Fatalf("spec %+v", sp)
	}
	// The supervisor log never holds env values.
	if err := c.Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, f := range []string{p.SupervisorSocket(), p.SupervisorPID(), p.LastError()} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind", f)
		}
	}
	if state.Held(p.SupervisorLock()) {
		t.Fatal("lock held after exit")
	}
}

func TestBootFailureRecorded(t *testing.T) {
	l, r, p := setup(t)
	fd := &fakedriver.Driver{FailBoot: errors.New("no hypervisor here")}
	err := Run(context.Background(), Config{Layout: l, Name: r.Name, Driver: fd, Assets: fakedriver.Assets(t.TempDir()), DataSize: 1 << 20, Logf: testlog.Func(t)})
	if err == nil {
		t.Fatal("no error")
	}
	b, _ := os.ReadFile(p.LastError())
	if !strings.Contains(string(b), "no hypervisor here") {
		t.Fatalf("last-error %q", b)
	}
}

func TestStopDuringBoot(t *testing.T) {
	l, r, p := setup(t)
	fd := &fakedriver.Driver{BootDelay: 10 * time.Second}
	done := make(chan error, 1)
	cfg := Config{Layout: l, Name: r.Name, Driver: fd, Assets: fakedriver.Assets(t.TempDir()), DataSize: 1 << 20, Logf: testlog.Func(t)}
	go func() {
		done <- Run(context.Background(), cfg)
	}()
	c := NewClient(p.SupervisorSocket())
	st := waitState(t, c, Starting)
	_ = st
	c.Stop(context.Background(), false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stop during boot returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop during boot did not end the supervisor")
	}
	if _, err := os.Stat(p.LastError()); !os.IsNotExist(err) {
		t.Fatal("a stop during boot was recorded as an error")
	}
}

package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/driver/fakedriver"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/supervisor/supervisortest"
)

type env struct {
	t   *testing.T
	l   *state.Layout
	fd  *fakedriver.Driver
	c   *api.Client
	ws  string
	ctx context.Context
	// stopDaemon kills the daemon (not the supervisors).
	stopDaemon func()
	launcher   *supervisortest.Launcher
}

// relayOnly makes test daemons relay exec sessions instead of handing them off.
var relayOnly bool

func startDaemon(t *testing.T, l *state.Layout, la Launcher) (*api.Client, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{L: l, Launcher: la, Version_: "test", Logf: func(string, ...any) {}, PollInterval: 20 * time.Millisecond, StopTimeout: 5 * time.Second, NoHandoff: relayOnly}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	c := api.NewClient(l.DaemonSocket())
	for i := 0; ; i++ {
		if _, err := c.Version(context.Background()); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("daemon did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

func newEnv(t *testing.T) *env {
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "moatt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	l, _ := state.New(home, filepath.Join(rt, "r"))
	fd := &fakedriver.Driver{BootDelay: 50 * time.Millisecond}
	la := &supervisortest.Launcher{L: l, Driver: fd, Assets: t.TempDir()}
	c, stop := startDaemon(t, l, la)
	ws := filepath.Join(t.TempDir(), "my.proj")
	os.MkdirAll(ws, 0o700)
	ws, _ = filepath.EvalSymlinks(ws)
	e := &env{t: t, l: l, fd: fd, c: c, ws: ws, ctx: context.Background(), stopDaemon: stop, launcher: la}
	t.Cleanup(func() {
		// Stop every sandbox so no supervisor goroutine outlives the test.
		if l, err := e.c.List(e.ctx); err == nil {
			for _, s := range l {
				e.c.Stop(e.ctx, s.Name, true)
			}
		}
		e.stopDaemon()
		la.Wait()
	})
	return e
}

func (e *env) exec(name string, req api.ExecRequest, stdin string) (string, protocol.ExitStatus, error) {
	conn, err := e.c.Exec(e.ctx, name, req)
	if err != nil {
		return "", protocol.ExitStatus{}, err
	}
	s, err := api.NewSession(conn)
	if err != nil {
		return "", protocol.ExitStatus{}, err
	}
	if req.Stdin {
		go s.CopyStdin(strings.NewReader(stdin))
	}
	var out bytes.Buffer
	st, err := s.Wait(&out, &out)
	return out.String(), st, err
}

func TestLifecycle(t *testing.T) {
	t.Run("handoff", testLifecycle)
	t.Run("relay", func(t *testing.T) {
		relayOnly = true
		defer func() { relayOnly = false }()
		testLifecycle(t)
	})
}

func testLifecycle(t *testing.T) {
	e := newEnv(t)
	res, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	if err != nil {
		t.Fatal(err)
	}
	name := res.Sandbox.Name
	if name != "shell-my-proj" || !res.Created || res.Sandbox.Status != api.StatusStopped {
		t.Fatalf("create: %+v", res)
	}
	// exec on a stopped sandbox.
	if _, _, err := e.exec(name, api.ExecRequest{Argv: []string{"echo"}}, ""); !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), "moat run "+name) {
		t.Fatalf("exec stopped: %v", err)
	}
	var phases []string
	if err := e.c.Start(e.ctx, name, func(p string) { phases = append(phases, p) }); err != nil {
		t.Fatal(err)
	}
	s, err := e.c.Get(e.ctx, name)
	if err != nil || s.Status != api.StatusRunning || s.Runtime == nil || s.Runtime.Driver != "fake" {
		t.Fatalf("get after start: %+v %v", s, err)
	}
	// Start again is a no-op.
	if err := e.c.Start(e.ctx, name, nil); err != nil || e.fd.Starts() != 1 {
		t.Fatalf("second start: %v, %d boots", err, e.fd.Starts())
	}
	out, st, err := e.exec(name, api.ExecRequest{Argv: []string{"echo", "hi", "there"}}, "")
	if err != nil || st.Code != 0 || out != "hi there\n" {
		t.Fatalf("echo: %q %+v %v", out, st, err)
	}
	out, st, err = e.exec(name, api.ExecRequest{Argv: []string{"cat"}, Stdin: true}, "piped input")
	if err != nil || out != "piped input" {
		t.Fatalf("cat: %q %+v %v", out, st, err)
	}
	out, st, err = e.exec(name, api.ExecRequest{Argv: []string{"env"}, Env: []string{"SECRET=s3cr3t"}}, "")
	if err != nil || !strings.Contains(out, "SECRET=s3cr3t") {
		t.Fatalf("env: %q %v", out, err)
	}
	_, st, err = e.exec(name, api.ExecRequest{Argv: []string{"exit", "42"}}, "")
	if err != nil || st.Code != 42 {
		t.Fatalf("exit code: %+v %v", st, err)
	}
	_, st, err = e.exec(name, api.ExecRequest{Argv: []string{"nosuchcmd"}}, "")
	if err != nil || st.Code != 127 {
		t.Fatalf("not found: %+v %v", st, err)
	}
	// A tty session: resize, typed input, ctrl-c as a signal, exit code.
	conn, err := e.c.Exec(e.ctx, name, api.ExecRequest{Argv: []string{"/bin/sh", "-c", "exec bash -l"}, TTY: true, Stdin: true, Size: protocol.WindowSize{Rows: 24, Cols: 80}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := api.NewSession(conn)
	if err != nil {
		t.Fatal(err)
	}
	sess.Resize(30, 100)
	sess.Stdin([]byte("echo typed\n"))
	sess.Stdin([]byte("exit 3\n"))
	var tout bytes.Buffer
	st, err = sess.Wait(&tout, nil)
	if err != nil || st.Code != 3 || !strings.Contains(tout.String(), "typed\r\n") || !strings.Contains(tout.String(), "[resize 30x100]") {
		t.Fatalf("tty: %q %+v %v", tout.String(), st, err)
	}
	// Stop.
	s, err = e.c.Stop(e.ctx, name, false)
	if err != nil || s.Status != api.StatusStopped {
		t.Fatalf("stop: %+v %v", s, err)
	}
	if _, _, err := e.exec(name, api.ExecRequest{Argv: []string{"echo"}}, ""); !errors.Is(err, api.ErrNotRunning) {
		t.Fatalf("exec after stop: %v", err)
	}
	// Run again reuses the sandbox and its disk.
	res2, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	if err != nil || res2.Created || res2.Sandbox.ID != res.Sandbox.ID {
		t.Fatalf("reuse: %+v %v", res2, err)
	}
	if err := e.c.Start(e.ctx, name, nil); err != nil || e.fd.Starts() != 2 {
		t.Fatalf("restart: %v", err)
	}
	if _, err := os.Stat(s.Paths.DataDisk); err != nil {
		t.Fatalf("data disk: %v", err)
	}
	// rm stops first and removes everything.
	if err := e.c.Remove(e.ctx, name, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Paths.Dir); !os.IsNotExist(err) {
		t.Fatalf("sandbox dir remains: %v", err)
	}
	if l, _ := e.c.List(e.ctx); len(l) != 0 {
		t.Fatalf("list after rm: %+v", l)
	}
	for _, f := range []func() error{
		func() error { return e.c.Remove(e.ctx, name, false) },
		func() error { _, err := e.c.Stop(e.ctx, name, false); return err },
		func() error { _, err := e.c.Get(e.ctx, name); return err },
		func() error { _, _, err := e.exec(name, api.ExecRequest{Argv: []string{"echo"}}, ""); return err },
		func() error { return e.c.Start(e.ctx, name, nil) },
	} {
		if err := f(); !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("unknown name: %v", err)
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	f := filepath.Join(e.ws, "file")
	os.WriteFile(f, nil, 0o600)
	cases := []struct {
		req  sandbox.Request
		want string
	}{
		{sandbox.Request{Agent: "nope", Workspaces: []sandbox.Workspace{{Path: e.ws}}}, "unknown agent"},
		{sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws + "/missing"}}}, "does not exist"},
		{sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: f}}}, "not a directory"},
		{sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: "/"}}}, "--force"},
		{sandbox.Request{Agent: "shell", Name: "bad/name", Workspaces: []sandbox.Workspace{{Path: e.ws}}}, "letters, digits"},
		{sandbox.Request{Agent: "shell", Template: "ubuntu:24.04", Workspaces: []sandbox.Workspace{{Path: e.ws}}}, "not available"},
	}
	for _, c := range cases {
		_, err := e.c.Create(e.ctx, c.req)
		var ae *api.Error
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ae) || ae.Code != api.CodeInvalid {
			t.Errorf("%+v: %v", c.req, err)
		}
	}
	if _, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Name: "dup", Workspaces: []sandbox.Workspace{{Path: e.ws}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Name: "dup", Workspaces: []sandbox.Workspace{{Path: e.ws}}}); !errors.Is(err, sandbox.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if l, _ := e.c.List(e.ctx); len(l) != 1 {
		t.Errorf("bad input changed state: %+v", l)
	}
	// An unreadable record: listed as error, named in errors, removable with -f.
	s, _ := e.c.Get(e.ctx, "dup")
	os.WriteFile(filepath.Join(s.Paths.Dir, state.RecordName), []byte("not json"), 0o600)
	if _, err := e.c.Get(e.ctx, "dup"); !errors.Is(err, sandbox.ErrUnreadable) {
		t.Errorf("unreadable get: %v", err)
	}
	if err := e.c.Start(e.ctx, "dup", nil); !errors.Is(err, sandbox.ErrUnreadable) {
		t.Errorf("unreadable start: %v", err)
	}
	l, _ := e.c.List(e.ctx)
	if len(l) != 1 || l[0].Status != api.StatusError {
		t.Errorf("unreadable list: %+v", l)
	}
	if err := e.c.Remove(e.ctx, "dup", false); !errors.Is(err, sandbox.ErrUnreadable) {
		t.Errorf("unreadable rm without -f: %v", err)
	}
	if err := e.c.Remove(e.ctx, "dup", true); err != nil {
		t.Errorf("unreadable rm -f: %v", err)
	}
}

func TestBootFailureIsError(t *testing.T) {
	e := newEnv(t)
	e.fd.FailBoot = errors.New("qemu exploded")
	res, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	if err != nil {
		t.Fatal(err)
	}
	err = e.c.Start(e.ctx, res.Sandbox.Name, nil)
	if err == nil || !strings.Contains(err.Error(), "qemu exploded") {
		t.Fatalf("start: %v", err)
	}
	s, _ := e.c.Get(e.ctx, res.Sandbox.Name)
	if s.Status != api.StatusError || !strings.Contains(s.Reason, "qemu exploded") {
		t.Fatalf("status: %+v", s)
	}
	e.fd.FailBoot = nil
	if err := e.c.Start(e.ctx, res.Sandbox.Name, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestConcurrentRunOneSandbox(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	names := make([]string, 10)
	errs := make([]error, 10)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
			if err != nil {
				errs[i] = err
				return
			}
			names[i] = res.Sandbox.Name
			errs[i] = e.c.Start(e.ctx, res.Sandbox.Name, nil)
		}()
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil || names[i] != names[0] {
			t.Fatalf("run %d: %q %v", i, names[i], errs[i])
		}
	}
	if l, _ := e.c.List(e.ctx); len(l) != 1 || l[0].Status != api.StatusRunning {
		t.Fatalf("list: %+v", l)
	}
	if e.fd.Starts() != 1 {
		t.Fatalf("%d VMs booted", e.fd.Starts())
	}
}

func TestDaemonRestartKeepsSandboxes(t *testing.T) {
	e := newEnv(t)
	res, _ := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	if err := e.c.Start(e.ctx, res.Sandbox.Name, nil); err != nil {
		t.Fatal(err)
	}
	e.stopDaemon()
	c, stop := startDaemon(t, e.l, e.launcher)
	e.c, e.stopDaemon = c, stop
	s, err := c.Get(e.ctx, res.Sandbox.Name)
	if err != nil || s.Status != api.StatusRunning {
		t.Fatalf("after restart: %+v %v", s, err)
	}
	out, _, err := e.exec(s.Name, api.ExecRequest{Argv: []string{"echo", "still", "here"}}, "")
	if err != nil || out != "still here\n" {
		t.Fatalf("exec after restart: %q %v", out, err)
	}
	if e.fd.Starts() != 1 {
		t.Fatalf("rebooted: %d", e.fd.Starts())
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	res, _ := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	got := make(chan api.Event, 100)
	go e.c.Events(ctx, func(ev api.Event) bool { got <- ev; return true })
	want := func(st api.Status) {
		for {
			select {
			case ev := <-got:
				if ev.Name == res.Sandbox.Name && ev.Status == st {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", st)
			}
		}
	}
	want(api.StatusStopped)
	if err := e.c.Start(e.ctx, res.Sandbox.Name, nil); err != nil {
		t.Fatal(err)
	}
	want(api.StatusRunning)
	e.c.Stop(e.ctx, res.Sandbox.Name, false)
	want(api.StatusStopped)
	e.c.Remove(e.ctx, res.Sandbox.Name, false)
	for {
		select {
		case ev := <-got:
			if ev.Removed {
				return
			}
		case <-ctx.Done():
			t.Fatal("no removed event")
		}
	}
}

func TestSocketMode(t *testing.T) {
	e := newEnv(t)
	fi, err := os.Stat(e.l.DaemonSocket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode().Perm())
	}
	// A second daemon refuses to serve.
	d := &Daemon{L: e.l, Launcher: e.launcher, Logf: func(string, ...any) {}}
	if err := d.Serve(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second daemon: %v", err)
	}
	_ = fmt.Sprint
}

func TestDeadSupervisorIsError(t *testing.T) {
	e := newEnv(t)
	res, _ := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	p := filepath.Join(res.Sandbox.Paths.Dir, state.SupervisorPIDName)
	os.WriteFile(p, []byte("4242\n"), 0o600) // as left by a SIGKILLed supervisor
	s, _ := e.c.Get(e.ctx, res.Sandbox.Name)
	if s.Status != api.StatusError || !strings.Contains(s.Reason, "pid 4242") {
		t.Fatalf("status: %+v", s)
	}
	if err := e.c.Start(e.ctx, res.Sandbox.Name, nil); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.c.Stop(e.ctx, res.Sandbox.Name, false); s.Status != api.StatusStopped {
		t.Fatalf("after stop: %+v", s)
	}
}

func TestWorkspaceGone(t *testing.T) {
	e := newEnv(t)
	res, _ := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	os.RemoveAll(e.ws)
	err := e.c.Start(e.ctx, res.Sandbox.Name, nil)
	if err == nil || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("start: %v", err)
	}
	if e.fd.Starts() != 0 {
		t.Fatal("booted without a workspace")
	}
}

// An attached session handed to the supervisor outlives the daemon.
func TestSessionSurvivesDaemon(t *testing.T) {
	e := newEnv(t)
	res, _ := e.c.Create(e.ctx, sandbox.Request{Agent: "shell", Workspaces: []sandbox.Workspace{{Path: e.ws}}, Reuse: true})
	name := res.Sandbox.Name
	if err := e.c.Start(e.ctx, name, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := e.c.Exec(e.ctx, name, api.ExecRequest{Argv: []string{"/bin/sh", "-c", "exec bash -l"}, TTY: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := api.NewSession(conn)
	if err != nil {
		t.Fatal(err)
	}
	e.stopDaemon()
	if _, err := e.c.Version(e.ctx); err == nil {
		t.Fatal("daemon still answers")
	}
	sess.Stdin([]byte("echo after-daemon\nexit 6\n"))
	var out bytes.Buffer
	st, err := sess.Wait(&out, nil)
	if err != nil || st.Code != 6 || !strings.Contains(out.String(), "after-daemon") {
		t.Fatalf("session after the daemon went away: %q %+v %v", out.String(), st, err)
	}
	c, stop := startDaemon(t, e.l, e.launcher)
	e.c, e.stopDaemon = c, stop
}

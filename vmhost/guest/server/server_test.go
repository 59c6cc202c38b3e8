//go:build linux

package server

import (
	"bytes"
	"github.com/moatsandbox/moat/internal/testlog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// The tests drive the server with a minimal yamux client built only from the
// protocol package's frames, over an in-memory connection.

type harness struct {
	t       *testing.T
	srv     *Server
	sess    *yamux.Session
	served  chan error
	configs atomic.Int32
}

func newHarness(t *testing.T, mod func(*Server)) *harness {
	t.Helper()
	h := &harness{t: t, served: make(chan error, 1)}
	h.srv = &Server{
		Reaper:       reaper.Default(),
		Root:         "/",
		AgentVersion: "test",
		Kernel:       "test-kernel",
		Logf:         testlog.Func(t),
	}
	h.srv.Config = ConfigFunc(func(cfg *protocol.Config, tm *protocol.Timings) error {
		h.configs.Add(1)
		tm.RootReadyMS = 1
		return nil
	})
	if mod != nil {
		mod(h.srv)
	}
	h.connect()
	return h
}

func (h *harness) connect() {
	guestEnd, hostEnd := net.Pipe()
	go func() { h.served <- h.srv.ServeConn(guestEnd) }()
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = os.Stderr
	sess, err := yamux.Client(hostEnd, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.sess = sess
	h.t.Cleanup(func() { sess.Close() })
}

func (h *harness) open() net.Conn {
	h.t.Helper()
	c, err := h.sess.Open()
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) send(c net.Conn, t protocol.FrameType, v any) {
	h.t.Helper()
	var err error
	switch b := v.(type) {
	case nil:
		err = protocol.WriteFrame(c, t, nil)
	case []byte:
		err = protocol.WriteFrame(c, t, b)
	default:
		err = protocol.WriteJSON(c, t, v)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) read(c net.Conn) protocol.Frame {
	h.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := protocol.ReadFrame(c)
	if err != nil {
		h.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (h *harness) hello(version int, cfg *protocol.Config) protocol.Frame {
	h.t.Helper()
	c := h.open()
	defer c.Close()
	h.send(c, protocol.FrameHello, protocol.Hello{Version: version, Config: cfg})
	return h.read(c)
}

func (h *harness) ready() {
	h.t.Helper()
	f := h.hello(protocol.Version, &protocol.Config{Hostname: "t"})
	if f.Type != protocol.FrameReady {
		h.t.Fatalf("hello answered %s %s", f.Type, f.Payload)
	}
}

type result struct {
	pid            int
	stdout, stderr bytes.Buffer
	exit           protocol.ExitStatus
	errFrame       string
}

// run executes req, feeds the optional callback once Started arrives, and
// collects everything until Exit.
func (h *harness) run(req protocol.ExecRequest, onStart func(c net.Conn, r *result)) *result {
	h.t.Helper()
	c := h.open()
	defer c.Close()
	h.send(c, protocol.FrameExec, req)
	r := &result{}
	for {
		f := h.read(c)
		switch f.Type {
		case protocol.FrameStarted:
			var s protocol.Started
			f.Decode(&s)
			r.pid = s.PID
			if onStart != nil {
				go onStart(c, r)
			}
		case protocol.FrameStdout:
			r.stdout.Write(f.Payload)
		case protocol.FrameStderr:
			r.stderr.Write(f.Payload)
		case protocol.FrameExit:
			f.Decode(&r.exit)
			return r
		case protocol.FrameError:
			var e protocol.Error
			f.Decode(&e)
			r.errFrame = e.Message
			return r
		default:
			h.t.Fatalf("unexpected frame %s", f.Type)
		}
	}
}

func TestVersionMismatch(t *testing.T) {
	h := newHarness(t, nil)
	f := h.hello(protocol.Version+41, &protocol.Config{})
	if f.Type != protocol.FrameError {
		t.Fatalf("got %s", f.Type)
	}
	var e protocol.Error
	f.Decode(&e)
	if !strings.Contains(e.Message, "not supported") {
		t.Fatalf("message %q", e.Message)
	}
	if h.configs.Load() != 0 {
		t.Fatal("config applied despite version mismatch")
	}
}

func TestHelloOncePerBoot(t *testing.T) {
	h := newHarness(t, nil)
	var r1, r2 protocol.Ready
	f := h.hello(protocol.Version, &protocol.Config{Hostname: "a"})
	if f.Type != protocol.FrameReady {
		t.Fatalf("got %s %s", f.Type, f.Payload)
	}
	f.Decode(&r1)
	if r1.AlreadyConfigured || r1.Version != protocol.Version || r1.Kernel != "test-kernel" || r1.Timings.RootReadyMS != 1 || r1.Timings.ReadyMS <= 0 || r1.Timings.HelloMS <= 0 {
		t.Fatalf("ready %+v", r1)
	}
	// A new session (host reconnect) with another config: ignored.
	h.sess.Close()
	<-h.served
	h.connect()
	h.hello(protocol.Version, &protocol.Config{Hostname: "b"}).Decode(&r2)
	if !r2.AlreadyConfigured || h.configs.Load() != 1 || r2.Timings != r1.Timings {
		t.Fatalf("second ready %+v, configs %d", r2, h.configs.Load())
	}
}

func TestConfigError(t *testing.T) {
	h := newHarness(t, func(s *Server) {
		s.Config = ConfigFunc(func(*protocol.Config, *protocol.Timings) error {
			return os.ErrNotExist
		})
	})
	f := h.hello(protocol.Version, &protocol.Config{})
	if f.Type != protocol.FrameError {
		t.Fatalf("got %s", f.Type)
	}
}

func TestExecBeforeHello(t *testing.T) {
	h := newHarness(t, nil)
	r := h.run(protocol.ExecRequest{Argv: []string{"true"}, User: "root"}, nil)
	if !strings.Contains(r.errFrame, "before hello") {
		t.Fatalf("got %+v", r)
	}
}

func TestEchoAndExitCodes(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	r := h.run(protocol.ExecRequest{Argv: []string{"echo", "hello", "world"}, User: "root"}, nil)
	if r.stdout.String() != "hello world\n" || r.exit.Code != 0 || r.pid <= 0 {
		t.Fatalf("echo: %q %+v pid %d", r.stdout.String(), r.exit, r.pid)
	}
	r = h.run(protocol.ExecRequest{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 1"}, User: "root"}, nil)
	if r.exit.Code != 1 || r.stdout.String() != "out\n" || r.stderr.String() != "err\n" {
		t.Fatalf("exit 1: %+v %q %q", r.exit, r.stdout.String(), r.stderr.String())
	}
	r = h.run(protocol.ExecRequest{Argv: []string{"sh", "-c", "kill -9 $$"}, User: "root"}, nil)
	if r.exit.Code != 137 || r.exit.Signal != 9 {
		t.Fatalf("kill -9: %+v", r.exit)
	}
}

func TestSignalFrame(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	for _, tty := range []bool{false, true} {
		r := h.run(protocol.ExecRequest{Argv: []string{"sleep", "30"}, User: "root", TTY: tty}, func(c net.Conn, _ *result) {
			h.send(c, protocol.FrameSignal, protocol.Signal{Signal: 9})
		})
		if r.exit.Code != 137 || r.exit.Signal != 9 {
			t.Fatalf("tty=%v: %+v", tty, r.exit)
		}
	}
}

func TestNotFoundAndNotExecutable(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	r := h.run(protocol.ExecRequest{Argv: []string{"no-such-binary-moat"}, User: "root"}, nil)
	if r.exit.Code != 127 || !strings.Contains(r.exit.Error, "no-such-binary-moat") {
		t.Fatalf("missing: %+v", r.exit)
	}
	r = h.run(protocol.ExecRequest{Argv: []string{"/nonexistent/bin/x"}, User: "root"}, nil)
	if r.exit.Code != 127 {
		t.Fatalf("missing path: %+v", r.exit)
	}
	f := filepath.Join(t.TempDir(), "script")
	os.WriteFile(f, []byte("#!/bin/sh\necho hi\n"), 0o644)
	r = h.run(protocol.ExecRequest{Argv: []string{f}, User: "root"}, nil)
	if r.exit.Code != 126 || r.exit.Error == "" {
		t.Fatalf("not executable: %+v", r.exit)
	}
	r = h.run(protocol.ExecRequest{Argv: []string{"true"}, User: "root", Dir: "/nonexistent-dir"}, nil)
	if r.exit.Code != 126 || !strings.Contains(r.exit.Error, "/nonexistent-dir") {
		t.Fatalf("bad dir: %+v", r.exit)
	}
	r = h.run(protocol.ExecRequest{Argv: []string{"true"}, User: "no-such-user-moat"}, nil)
	if r.exit.Code != 126 || !strings.Contains(r.exit.Error, "no-such-user-moat") {
		t.Fatalf("bad user: %+v", r.exit)
	}
}

func TestStdin(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	r := h.run(protocol.ExecRequest{Argv: []string{"cat"}, User: "root", Stdin: true}, func(c net.Conn, _ *result) {
		h.send(c, protocol.FrameStdin, []byte("abc\n"))
		h.send(c, protocol.FrameStdin, []byte("def"))
		h.send(c, protocol.FrameStdinEOF, nil)
	})
	if r.stdout.String() != "abc\ndef" || r.exit.Code != 0 {
		t.Fatalf("cat: %q %+v", r.stdout.String(), r.exit)
	}
	// Without Stdin the process reads /dev/null.
	r = h.run(protocol.ExecRequest{Argv: []string{"cat"}, User: "root"}, nil)
	if r.stdout.Len() != 0 || r.exit.Code != 0 {
		t.Fatalf("cat </dev/null: %q %+v", r.stdout.String(), r.exit)
	}
}

func TestLargeOutput(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	r := h.run(protocol.ExecRequest{Argv: []string{"head", "-c", "3000000", "/dev/zero"}, User: "root"}, nil)
	if r.stdout.Len() != 3000000 || r.exit.Code != 0 {
		t.Fatalf("got %d bytes, %+v", r.stdout.Len(), r.exit)
	}
}

func TestPTYSizeAndResize(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	r := h.run(protocol.ExecRequest{
		Argv: []string{"sh", "-c", "stty size; read x; stty size; test -t 0 && echo tty; echo $TERM"},
		User: "root", TTY: true, Stdin: true, Size: protocol.WindowSize{Rows: 33, Cols: 101},
	}, func(c net.Conn, r *result) {
		time.Sleep(300 * time.Millisecond) // let the first stty run
		h.send(c, protocol.FrameResize, protocol.WindowSize{Rows: 40, Cols: 120})
		h.send(c, protocol.FrameStdin, []byte("\n"))
	})
	out := strings.ReplaceAll(r.stdout.String(), "\r", "")
	if r.exit.Code != 0 || !strings.Contains(out, "33 101\n") || !strings.Contains(out, "40 120\n") ||
		!strings.Contains(out, "tty\n") || !strings.Contains(out, "xterm-256color") {
		t.Fatalf("pty: %q %+v", out, r.exit)
	}
	if strings.Index(out, "33 101") > strings.Index(out, "40 120") {
		t.Fatalf("order: %q", out)
	}
}

func TestEnvAndDir(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	dir := t.TempDir()
	r := h.run(protocol.ExecRequest{
		Argv: []string{"sh", "-c", `echo "$FOO|$PWD|$HOME|$USER|$LOGNAME|$PATH|$TERM"; pwd`},
		Env:  []string{"FOO=bar baz", "PATH=/usr/bin:/bin"}, Dir: dir, User: "root",
	}, nil)
	want := "bar baz|" + dir + "|/root|root|root|/usr/bin:/bin|\n" + dir + "\n"
	if r.stdout.String() != want {
		t.Fatalf("got %q want %q", r.stdout.String(), want)
	}
	// Dir empty: the user's home.
	r = h.run(protocol.ExecRequest{Argv: []string{"pwd"}, User: "root"}, nil)
	if r.stdout.String() != "/root\n" {
		t.Fatalf("home dir: %q", r.stdout.String())
	}
}

func TestUserSwitch(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	h := newHarness(t, nil)
	h.ready()
	for _, u := range []string{"nobody", "65534"} {
		r := h.run(protocol.ExecRequest{Argv: []string{"sh", "-c", "id -u; id -g; pwd"}, User: u}, nil)
		if r.stdout.String() != "65534\n65534\n/\n" || r.exit.Code != 0 {
			t.Fatalf("user %s: %q %+v", u, r.stdout.String(), r.exit)
		}
	}
	// Unknown numeric uid: runs with gid = uid.
	r := h.run(protocol.ExecRequest{Argv: []string{"id", "-u", "-g"}, User: "4321"}, nil)
	if r.exit.Code != 0 || r.stdout.String() != "4321\n" {
		// id -u -g is not valid on every id; fall back to checking uid only.
		r = h.run(protocol.ExecRequest{Argv: []string{"id", "-u"}, User: "4321"}, nil)
		if r.stdout.String() != "4321\n" {
			t.Fatalf("uid 4321: %q %+v", r.stdout.String(), r.exit)
		}
	}
}

func TestDefaultUserAndGroups(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Dir(root), 0o755)
	home := filepath.Join(root, "home")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(home, 0o755)
	os.Chown(home, 1000, 1000)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nagent:x:1000:1000::"+home+":/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("agent:x:1000:\nextra:x:2345:agent\n"), 0o644)
	h := newHarness(t, func(s *Server) { s.Root = root })
	h.ready()
	r := h.run(protocol.ExecRequest{Argv: []string{"sh", "-c", "id -u; id -G; pwd; echo $USER $HOME"}}, nil)
	want := "1000\n1000 2345\n" + home + "\nagent " + home + "\n"
	if r.stdout.String() != want || r.exit.Code != 0 {
		t.Fatalf("got %q want %q (%+v)", r.stdout.String(), want, r.exit)
	}
}

func TestDrainCapWithBackgroundChild(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	start := time.Now()
	r := h.run(protocol.ExecRequest{Argv: []string{"sh", "-c", "sleep 5 & echo hi"}, User: "root"}, nil)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("exit took %v", d)
	}
	if r.stdout.String() != "hi\n" || r.exit.Code != 0 {
		t.Fatalf("got %q %+v", r.stdout.String(), r.exit)
	}
}

func TestHangupOnHostClose(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	mark := filepath.Join(t.TempDir(), "hup")
	c := h.open()
	h.send(c, protocol.FrameExec, protocol.ExecRequest{
		Argv: []string{"sh", "-c", `trap 'echo hup > "$MARK"; exit 0' HUP; echo up; while :; do sleep 0.05; done`},
		Env:  []string{"MARK=" + mark}, User: "root",
	})
	if f := h.read(c); f.Type != protocol.FrameStarted {
		t.Fatalf("got %s", f.Type)
	}
	if f := h.read(c); f.Type != protocol.FrameStdout {
		t.Fatalf("got %s", f.Type)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(mark); err == nil && string(b) == "hup\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("process did not get SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessSurvivesSessionLoss(t *testing.T) {
	h := newHarness(t, nil)
	h.ready()
	mark := filepath.Join(t.TempDir(), "alive")
	c := h.open()
	h.send(c, protocol.FrameExec, protocol.ExecRequest{
		Argv: []string{"sh", "-c", `trap 'exit 9' HUP; echo up; sleep 0.5; echo alive > "$MARK"`},
		Env:  []string{"MARK=" + mark}, User: "root",
	})
	h.read(c) // started
	h.read(c) // up
	h.sess.Close()
	<-h.served
	time.Sleep(1 * time.Second)
	if b, _ := os.ReadFile(mark); string(b) != "alive\n" {
		t.Fatalf("process did not survive the session: %q", b)
	}
	// The host reconnects: already configured, execs work.
	h.connect()
	var r protocol.Ready
	h.hello(protocol.Version, nil).Decode(&r)
	if !r.AlreadyConfigured {
		t.Fatalf("ready %+v", r)
	}
	if res := h.run(protocol.ExecRequest{Argv: []string{"true"}, User: "root"}, nil); res.exit.Code != 0 {
		t.Fatalf("exec after reconnect: %+v", res.exit)
	}
}

func TestShutdown(t *testing.T) {
	got := make(chan time.Duration, 1)
	h := newHarness(t, func(s *Server) { s.Shutdown = func(d time.Duration) { got <- d } })
	c := h.open()
	h.send(c, protocol.FrameShutdown, protocol.Shutdown{GraceMS: 1500})
	if f := h.read(c); f.Type != protocol.FrameShutdownAck {
		t.Fatalf("got %s", f.Type)
	}
	select {
	case d := <-got:
		if d != 1500*time.Millisecond {
			t.Fatalf("grace %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown hook not called")
	}
}

func TestUnexpectedFirstFrame(t *testing.T) {
	h := newHarness(t, nil)
	c := h.open()
	h.send(c, protocol.FrameStdin, []byte("x"))
	if f := h.read(c); f.Type != protocol.FrameError {
		t.Fatalf("got %s", f.Type)
	}
}

//go:build linux

package agentclient

import (
	"bytes"
	"context"
	"github.com/moatsandbox/moat/internal/testlog"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/guest/server"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// These tests run the real guest server on this host over an in-memory pipe,
// so the host client and the guest server are checked against each other
// without a VM (the VM conformance suite does the same through QEMU).

func newPair(t *testing.T) *Client {
	t.Helper()
	guestEnd, hostEnd := net.Pipe()
	srv := &server.Server{Reaper: reaper.Default(), Root: "/", AgentVersion: "test", Kernel: "k", Logf: testlog.Func(t)}
	go srv.ServeConn(guestEnd)
	c, err := New(hostEnd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Hello(ctx, &protocol.Config{Hostname: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != protocol.Version || r.AgentVersion != "test" {
		t.Fatalf("ready: %+v", r)
	}
	return c
}

func rootOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
}

func TestRunAndExitCodes(t *testing.T) {
	rootOnly(t)
	c := newPair(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	st, err := c.Run(ctx, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, User: "root"}, Stdio{Stdout: &out, Stderr: &errb})
	if err != nil || st.Code != 3 || out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("run: %+v %v %q %q", st, err, out.String(), errb.String())
	}
	st, _ = c.Run(ctx, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", "kill -9 $$"}, User: "root"}, Stdio{})
	if st.Code != 137 || st.Signal != 9 {
		t.Fatalf("killed: %+v", st)
	}
	st, err = c.Run(ctx, protocol.ExecRequest{Argv: []string{"no-such-command-xyz"}, User: "root"}, Stdio{})
	if err != nil || st.Code != 127 || !strings.Contains(st.Error, "no-such-command-xyz") {
		t.Fatalf("not found: %+v %v", st, err)
	}
}

func TestStdinAndSignal(t *testing.T) {
	rootOnly(t)
	c := newPair(t)
	ctx := context.Background()
	var out bytes.Buffer
	st, err := c.Run(ctx, protocol.ExecRequest{Argv: []string{"wc", "-c"}, User: "root"}, Stdio{Stdin: strings.NewReader(strings.Repeat("x", 100000)), Stdout: &out})
	if err != nil || st.Code != 0 || strings.TrimSpace(out.String()) != "100000" {
		t.Fatalf("stdin: %+v %v %q", st, err, out.String())
	}
	p, err := c.Start(ctx, protocol.ExecRequest{Argv: []string{"sleep", "60"}, User: "root"}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	p.Signal(15)
	st, err = p.Wait()
	if err != nil || st.Code != 143 {
		t.Fatalf("SIGTERM: %+v %v", st, err)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestTTYResize(t *testing.T) {
	rootOnly(t)
	c := newPair(t)
	pr, pw := io.Pipe()
	out := &lockedBuf{}
	p, err := c.Start(context.Background(), protocol.ExecRequest{
		Argv: []string{"/bin/sh", "-c", "stty size; read x; stty size"}, User: "root",
		TTY: true, Size: protocol.WindowSize{Rows: 12, Cols: 34},
	}, Stdio{Stdin: pr, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "12 34") {
		if time.Now().After(deadline) {
			t.Fatalf("initial size not seen: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Resize(50, 160); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	io.WriteString(pw, "\n")
	st, err := p.Wait()
	pw.Close()
	if err != nil || st.Code != 0 || !strings.Contains(out.String(), "50 160") {
		t.Fatalf("after resize: %+v %v %q", st, err, out.String())
	}
}

func TestCancelledContextHangsUp(t *testing.T) {
	rootOnly(t)
	c := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := c.Start(ctx, protocol.ExecRequest{Argv: []string{"sleep", "60"}, User: "root"}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not end the exec")
	}
	if _, err := p.Wait(); err == nil {
		t.Fatal("an abandoned exec must report that its stream ended")
	}
	// The session stays usable.
	var out bytes.Buffer
	if st, err := c.Run(context.Background(), protocol.ExecRequest{Argv: []string{"echo", "still here"}, User: "root"}, Stdio{Stdout: &out}); err != nil || st.Code != 0 || out.String() != "still here\n" {
		t.Fatalf("after cancel: %+v %v %q", st, err, out.String())
	}
}

func TestEmptyArgv(t *testing.T) {
	c := newPair(t)
	if _, err := c.Start(context.Background(), protocol.ExecRequest{}, Stdio{}); err == nil {
		t.Fatal("empty argv accepted")
	}
}

//go:build linux

package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// TestListenMode runs the built command in development mode (-listen
// unix:PATH) and speaks the protocol to it.
func TestListenMode(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "moat-guest")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(bin, "-listen", "unix:"+sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = os.Stderr
	sess, err := yamux.Client(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	roundTrip := func(t protocol.FrameType, v any) []protocol.Frame {
		st, err := sess.Open()
		if err != nil {
			panic(err)
		}
		defer st.Close()
		protocol.WriteJSON(st, t, v)
		var frames []protocol.Frame
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, err := protocol.ReadFrame(st)
			if err != nil {
				return frames
			}
			frames = append(frames, f)
		}
	}
	fr := roundTrip(protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: &protocol.Config{Hostname: "ignored"}})
	if len(fr) != 1 || fr[0].Type != protocol.FrameReady {
		t.Fatalf("hello: %v", fr)
	}
	user := strconv.Itoa(os.Getuid()) // run as ourselves

	fr = roundTrip(protocol.FrameExec, protocol.ExecRequest{Argv: []string{"echo", "dev mode"}, User: user})
	var out bytes.Buffer
	var exit protocol.ExitStatus
	for _, f := range fr {
		switch f.Type {
		case protocol.FrameStdout:
			out.Write(f.Payload)
		case protocol.FrameExit:
			f.Decode(&exit)
		}
	}
	if out.String() != "dev mode\n" || exit.Code != 0 {
		t.Fatalf("exec: %q %+v (%d frames)", out.String(), exit, len(fr))
	}
}

//go:build !windows

package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Hand-off: the daemon passes an exec client's connection to the supervisor
// (SCM_RIGHTS over HandoffSocket), so the session runs daemon-free:
//
//	daemon -> supervisor: 1 byte carrying the fd, then an exec frame (ExecRequest)
//	supervisor -> daemon: a started frame (accepted) or an error frame
//
// Once accepted, the supervisor writes the 101 answer to the client itself
// and serves the exec frames on it.

func (s *sup) serveHandoff(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.handoff(c.(*net.UnixConn))
	}
}

func (s *sup) handoff(uc *net.UnixConn) {
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return
	}
	f := os.NewFile(uintptr(fds[0]), "exec-client")
	client, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	fr, err := protocol.ReadFrame(uc)
	var req protocol.ExecRequest
	if err == nil && fr.Type == protocol.FrameExec {
		err = fr.Decode(&req)
	} else if err == nil {
		err = fmt.Errorf("hand-off: unexpected %s frame", fr.Type)
	}
	if err != nil {
		client.Close()
		return
	}
	s.mu.Lock()
	v, st := s.v, s.st.State
	s.mu.Unlock()
	if v == nil || st != Running {
		protocol.WriteJSON(uc, protocol.FrameError, protocol.Error{Message: fmt.Sprintf("sandbox %q is %s", s.rec.Name, st)})
		client.Close()
		return
	}
	if err := protocol.WriteJSON(uc, protocol.FrameStarted, protocol.Started{}); err != nil {
		client.Close()
		return
	}
	uc.Close()
	if err := api.WriteSwitching(client); err != nil {
		client.Close()
		return
	}
	s.logf("exec %s (tty=%v, handed off)", argv0(req.Argv), req.TTY)
	relayExec(context.Background(), api.NewConn(client), v.Agent, req)
}

func (s *sup) listenHandoff(path string) (func(), error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	os.Chmod(path, 0o600)
	go s.serveHandoff(ln)
	return func() { ln.Close(); os.Remove(path) }, nil
}

// HandOff passes client (a unix socket connection) and req to the
// supervisor at socket. accepted=false with a nil error means the
// supervisor never took the connection (the caller may relay instead).
func HandOff(ctx context.Context, socket string, client net.Conn, req protocol.ExecRequest) (accepted bool, err error) {
	cu, ok := client.(*net.UnixConn)
	if !ok {
		return false, nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return false, nil
	}
	uc := c.(*net.UnixConn)
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	f, err := cu.File()
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if _, _, err := uc.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		return false, nil
	}
	if err := protocol.WriteJSON(uc, protocol.FrameExec, req); err != nil {
		return false, nil
	}
	fr, err := protocol.ReadFrame(uc)
	if err != nil {
		// The supervisor holds the connection but did not answer: it went
		// away mid-hand-off. The client sees its connection close.
		return true, nil
	}
	if fr.Type == protocol.FrameError {
		var e protocol.Error
		fr.Decode(&e)
		return false, fmt.Errorf("%w: %s", api.ErrNotRunning, e.Message)
	}
	return true, nil
}

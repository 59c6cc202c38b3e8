package api

import (
	"errors"
	"fmt"
	"io"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Session is the client end of an exec stream.
type Session struct {
	conn io.ReadWriteCloser
	w    *protocol.Writer
	PID  int
	// early is set when the process could not start (exit before started).
	early *protocol.ExitStatus
}

// NewSession waits for the process to start on an upgraded connection.
// A command that cannot start (127/126) is not an error: Wait reports it.
func NewSession(conn io.ReadWriteCloser) (*Session, error) {
	s := &Session{conn: conn, w: protocol.NewWriter(conn)}
	f, err := protocol.ReadFrame(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("exec: stream ended before the process started: %w", err)
	}
	switch f.Type {
	case protocol.FrameStarted:
		var st protocol.Started
		f.Decode(&st)
		s.PID = st.PID
	case protocol.FrameExit:
		var st protocol.ExitStatus
		if err := f.Decode(&st); err != nil {
			conn.Close()
			return nil, err
		}
		s.early = &st
	case protocol.FrameError:
		var e protocol.Error
		f.Decode(&e)
		conn.Close()
		return nil, errors.New(e.Message)
	default:
		conn.Close()
		return nil, fmt.Errorf("exec: unexpected %s frame", f.Type)
	}
	return s, nil
}

// Stdin sends input bytes.
func (s *Session) Stdin(b []byte) error { return s.w.Data(protocol.FrameStdin, b) }

// CloseStdin sends end of input.
func (s *Session) CloseStdin() error {
	return s.w.Frame(protocol.FrameStdinEOF, nil)
}

// Resize sends the terminal size.
func (s *Session) Resize(rows, cols uint16) error {
	return s.w.JSON(protocol.FrameResize, protocol.WindowSize{Rows: rows, Cols: cols})
}

// Signal sends a Linux signal number.
func (s *Session) Signal(sig int) error {
	return s.w.JSON(protocol.FrameSignal, protocol.Signal{Signal: sig})
}

// CopyStdin pumps r into the process, then sends end of input.
func (s *Session) CopyStdin(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if s.Stdin(buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			s.CloseStdin()
			return
		}
	}
}

// Wait copies output until the process exits and returns its status.
func (s *Session) Wait(stdout, stderr io.Writer) (protocol.ExitStatus, error) {
	defer s.conn.Close()
	if s.early != nil {
		return *s.early, nil
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		f, err := protocol.ReadFrame(s.conn)
		if err != nil {
			return protocol.ExitStatus{}, fmt.Errorf("exec: connection to the sandbox ended before the process exited: %w", err)
		}
		switch f.Type {
		case protocol.FrameStdout:
			stdout.Write(f.Payload)
		case protocol.FrameStderr:
			stderr.Write(f.Payload)
		case protocol.FrameExit:
			var st protocol.ExitStatus
			return st, f.Decode(&st)
		case protocol.FrameError:
			var e protocol.Error
			f.Decode(&e)
			return protocol.ExitStatus{}, errors.New(e.Message)
		}
	}
}

// Close abandons the session (the process gets SIGHUP).
func (s *Session) Close() error { return s.conn.Close() }

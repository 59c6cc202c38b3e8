// Package agentclient is the host side of the guest agent protocol
// (vmhost/protocol/PROTOCOL.md): it opens a yamux session over a VM's agent
// channel and offers Hello, Exec and Shutdown as plain Go calls.
//
// One Client owns one channel connection; it is safe for concurrent use, and
// every Exec gets its own stream.
package agentclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Client is a session with one guest agent.
type Client struct {
	sess *yamux.Session
}

// New starts a session over conn (the agent channel) and takes ownership of it.
func New(conn io.ReadWriteCloser) (*Client, error) {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.ConnectionWriteTimeout = 30 * time.Second
	sess, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent session: %w", err)
	}
	return &Client{sess: sess}, nil
}

// Close ends the session; running processes in the guest get SIGHUP.
func (c *Client) Close() error { return c.sess.Close() }

// Done is closed when the session ends (guest gone or Close called).
func (c *Client) Done() <-chan struct{} { return c.sess.CloseChan() }

// open opens a stream bound to ctx: cancelling ctx resets the stream.
func (c *Client) open(ctx context.Context) (*yamux.Stream, func(), error) {
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, nil, fmt.Errorf("open agent stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Close() })
	return st, func() { stop() }, nil
}

// Hello sends the session's Hello (with cfg on first contact after boot) and
// waits for Ready. It is how the host knows the guest is up.
func (c *Client) Hello(ctx context.Context, cfg *protocol.Config) (*protocol.Ready, error) {
	st, release, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	defer st.Close()
	if err := protocol.WriteJSON(st, protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: cfg}); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("send hello: %w", err))
	}
	f, err := protocol.ReadFrame(st)
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("wait for guest ready: %w", err))
	}
	switch f.Type {
	case protocol.FrameReady:
		var r protocol.Ready
		if err := f.Decode(&r); err != nil {
			return nil, err
		}
		if err := protocol.CheckVersion(r.Version); err != nil {
			return nil, err
		}
		return &r, nil
	case protocol.FrameError:
		return nil, decodeError(f)
	default:
		return nil, fmt.Errorf("guest answered hello with %s", f.Type)
	}
}

// Shutdown asks the guest to stop its processes, sync, unmount and power off.
// It returns once the guest acknowledged; the hypervisor exits shortly after.
func (c *Client) Shutdown(ctx context.Context, grace time.Duration) error {
	st, release, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer release()
	defer st.Close()
	if err := protocol.WriteJSON(st, protocol.FrameShutdown, protocol.Shutdown{GraceMS: int(grace / time.Millisecond)}); err != nil {
		return ctxErr(ctx, err)
	}
	f, err := protocol.ReadFrame(st)
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("wait for shutdown ack: %w", err))
	}
	if f.Type == protocol.FrameError {
		return decodeError(f)
	}
	if f.Type != protocol.FrameShutdownAck {
		return fmt.Errorf("guest answered shutdown with %s", f.Type)
	}
	return nil
}

// Stdio connects a process's standard streams. Nil Stdin means no input
// (ExecRequest.Stdin is set from it); nil Stdout/Stderr discard.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Process is a running guest process.
type Process struct {
	PID int

	st      *yamux.Stream
	w       *protocol.Writer // every frame we write goes through it
	done    chan struct{}
	status  protocol.ExitStatus
	err     error
	release func()
}

// Start runs req in the guest with stdio attached and returns once the guest
// reports the process started. A process that cannot start (not found, bad
// user or directory) is not an error here: Wait returns its 126/127 status.
func (c *Client) Start(ctx context.Context, req protocol.ExecRequest, stdio Stdio) (*Process, error) {
	if len(req.Argv) == 0 {
		return nil, errors.New("exec: empty command")
	}
	req.Stdin = stdio.Stdin != nil
	st, release, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	p := &Process{st: st, w: protocol.NewWriter(st), done: make(chan struct{}), release: release}
	if err := p.w.JSON(protocol.FrameExec, req); err != nil {
		p.close()
		return nil, ctxErr(ctx, fmt.Errorf("send exec: %w", err))
	}
	f, err := protocol.ReadFrame(st)
	if err != nil {
		p.close()
		return nil, ctxErr(ctx, fmt.Errorf("wait for exec start: %w", err))
	}
	switch f.Type {
	case protocol.FrameStarted:
		var s protocol.Started
		if err := f.Decode(&s); err != nil {
			p.close()
			return nil, err
		}
		p.PID = s.PID
	case protocol.FrameExit:
		// Could not start: report through Wait like any other exit.
		if err := f.Decode(&p.status); err != nil {
			p.err = err
		}
		p.close()
		close(p.done)
		return p, nil
	case protocol.FrameError:
		p.close()
		return nil, decodeError(f)
	default:
		p.close()
		return nil, fmt.Errorf("guest answered exec with %s", f.Type)
	}
	if stdio.Stdin != nil {
		go p.pumpStdin(stdio.Stdin)
	}
	go p.readLoop(stdio.Stdout, stdio.Stderr)
	return p, nil
}

// Run starts req and waits for it: the exit status, or an error if the
// session broke.
func (c *Client) Run(ctx context.Context, req protocol.ExecRequest, stdio Stdio) (protocol.ExitStatus, error) {
	p, err := c.Start(ctx, req, stdio)
	if err != nil {
		return protocol.ExitStatus{}, err
	}
	return p.Wait()
}

func (p *Process) close() {
	p.st.Close()
	if p.release != nil {
		p.release()
	}
}

func (p *Process) pumpStdin(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := p.w.Data(protocol.FrameStdin, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			select {
			case <-p.done:
			default:
				p.w.Frame(protocol.FrameStdinEOF, nil)
			}
			return
		}
	}
}

func (p *Process) readLoop(stdout, stderr io.Writer) {
	defer close(p.done)
	defer p.close()
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		f, err := protocol.ReadFrame(p.st)
		if err != nil {
			p.err = fmt.Errorf("agent stream ended before the process exited: %w", err)
			return
		}
		switch f.Type {
		case protocol.FrameStdout:
			stdout.Write(f.Payload)
		case protocol.FrameStderr:
			stderr.Write(f.Payload)
		case protocol.FrameExit:
			p.err = f.Decode(&p.status)
			return
		case protocol.FrameError:
			p.err = decodeError(f)
			return
		default:
			p.err = fmt.Errorf("unexpected %s frame on exec stream", f.Type)
			return
		}
	}
}

// Resize changes the process's terminal size (TTY only).
func (p *Process) Resize(rows, cols uint16) error {
	return p.w.JSON(protocol.FrameResize, protocol.WindowSize{Rows: rows, Cols: cols})
}

// Signal delivers a Linux signal number to the process (its group with a TTY).
func (p *Process) Signal(sig int) error {
	return p.w.JSON(protocol.FrameSignal, protocol.Signal{Signal: sig})
}

// Done is closed when the process has exited and its output is delivered.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until the process exits and all its output was written.
func (p *Process) Wait() (protocol.ExitStatus, error) {
	<-p.done
	return p.status, p.err
}

// Hangup abandons the process: the guest sends it SIGHUP.
func (p *Process) Hangup() { p.close() }

func decodeError(f protocol.Frame) error {
	var e protocol.Error
	if err := f.Decode(&e); err != nil {
		return err
	}
	return &e
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// Dialer opens the raw agent channel; driver.Machine.DialAgent satisfies it.
type Dialer func(ctx context.Context) (net.Conn, error)

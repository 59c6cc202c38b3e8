//go:build linux

// Package server is the guest side of the Moat host↔guest protocol
// (vmhost/protocol/PROTOCOL.md): a yamux server over the agent channel whose
// streams are hello (session setup), exec (one process, with a PTY or pipes)
// and shutdown.
//
// The server knows nothing about PID 1: applying a Config and powering off
// are hooks (Configurator, Shutdown) supplied by the boot package, so the
// whole protocol runs in unit tests over an in-memory connection. Processes
// are started through the reaper, never with os/exec.
package server

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/guest/clock"
	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Configurator applies a Hello's Config. It is called at most once per boot
// (per Server), with t holding the milestones measured so far; it fills in
// the ones it reaches (RootReadyMS, MountsReadyMS, NetworkReadyMS).
type Configurator interface {
	Configure(cfg *protocol.Config, t *protocol.Timings) error
}

// ConfigFunc adapts a function to Configurator.
type ConfigFunc func(cfg *protocol.Config, t *protocol.Timings) error

// Configure calls f.
func (f ConfigFunc) Configure(cfg *protocol.Config, t *protocol.Timings) error { return f(cfg, t) }

// Server serves protocol sessions. The zero value is not usable; fill the
// fields before the first ServeConn. One Server lives for the whole boot and
// serves successive sessions (the host may reconnect).
type Server struct {
	// Reaper starts and waits for every exec'd process.
	Reaper *reaper.Reaper
	// Root is the directory whose etc/passwd and etc/group resolve users
	// ("/" in the guest).
	Root string
	// Config applies the sandbox config; nil accepts any config and does nothing.
	Config Configurator
	// Shutdown is called (in its own goroutine) after shutdown-ack is sent,
	// with the grace period between SIGTERM and SIGKILL. In the guest it
	// never returns. Nil means shutdown requests are acknowledged only.
	Shutdown func(grace time.Duration)
	// AgentVersion is reported in Ready.
	AgentVersion string
	// Kernel is reported in Ready (uname -r).
	Kernel string
	// Timings holds the milestones before the first Hello (InitStartMS,
	// ModulesLoadedMS, ChannelOpenMS); the server fills in the rest.
	Timings protocol.Timings
	// Logf logs one line (never with env values); nil uses the log package.
	Logf func(format string, args ...any)

	mu         sync.Mutex
	configured bool
	configErr  error
	ready      bool
	execs      sync.WaitGroup
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// YamuxConfig is the yamux configuration of the guest side: library defaults
// (keepalives on) with logs routed to logf.
func YamuxConfig(w io.Writer) *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = w
	return c
}

type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logf("yamux: %s", trimNL(string(p)))
	return len(p), nil
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// ServeConn runs one yamux session over conn until it ends (EOF, error, or
// the host going away) and returns why. It closes conn. Processes started in
// the session keep running after it ends; their exec streams are lost.
func (s *Server) ServeConn(conn io.ReadWriteCloser) error {
	sess, err := yamux.Server(conn, YamuxConfig(logWriter{s}))
	if err != nil {
		conn.Close()
		return err
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, yamux.ErrSessionShutdown) {
				return io.EOF
			}
			return err
		}
		go s.serveStream(sess, st)
	}
}

// stream wraps a yamux stream with serialised frame writes.
type stream struct {
	sess *yamux.Session
	c    net.Conn
	wmu  sync.Mutex
	dead bool // a write failed or the stream was finished: drop further frames
}

func (st *stream) write(t protocol.FrameType, payload []byte) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if st.dead {
		return io.ErrClosedPipe
	}
	var err error
	if t == protocol.FrameStdout || t == protocol.FrameStderr {
		err = protocol.WriteData(st.c, t, payload)
	} else {
		err = protocol.WriteFrame(st.c, t, payload)
	}
	if err != nil {
		st.dead = true
	}
	return err
}

func (st *stream) writeJSON(t protocol.FrameType, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return st.write(t, b)
}

// finish sends a last frame (if any), stops further writes and closes.
func (st *stream) finish(t protocol.FrameType, v any) {
	if v != nil {
		_ = st.writeJSON(t, v)
	}
	st.wmu.Lock()
	st.dead = true
	st.wmu.Unlock()
	st.c.Close()
	// Nothing more is read from a finished stream: wake any reader.
	_ = st.c.SetReadDeadline(time.Now())
}

func (st *stream) fail(format string, args ...any) {
	st.finish(protocol.FrameError, protocol.Error{Message: fmt.Sprintf(format, args...)})
}

func (s *Server) serveStream(sess *yamux.Session, c net.Conn) {
	st := &stream{sess: sess, c: c}
	f, err := protocol.ReadFrame(c)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			st.fail("read first frame: %v", err)
		} else {
			c.Close()
		}
		return
	}
	switch f.Type {
	case protocol.FrameHello:
		s.hello(st, f)
	case protocol.FrameExec:
		s.exec(st, f)
	case protocol.FrameShutdown:
		s.shutdown(st, f)
	default:
		st.fail("unexpected first frame %s (want hello, exec or shutdown)", f.Type)
	}
}

func (s *Server) hello(st *stream, f protocol.Frame) {
	helloMS := clock.BootMS()
	var h protocol.Hello
	if err := f.Decode(&h); err != nil {
		st.fail("%v", err)
		return
	}
	if err := protocol.CheckVersion(h.Version); err != nil {
		s.logf("hello: %v", err)
		st.fail("%v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	already := s.configured
	switch {
	case s.configErr != nil:
		st.fail("configuration failed earlier in this boot: %v", s.configErr)
		return
	case s.configured:
		// Config of a later Hello is ignored.
	case h.Config != nil:
		s.Timings.HelloMS = helloMS
		t := s.Timings
		if s.Config != nil {
			if err := s.Config.Configure(h.Config, &t); err != nil {
				s.configErr = err
				s.logf("configure: %v", err)
				st.fail("%v", err)
				return
			}
		}
		s.Timings = t
		s.configured = true
	default:
		if s.Timings.HelloMS == 0 {
			s.Timings.HelloMS = helloMS
		}
	}
	if !already {
		s.Timings.ReadyMS = clock.BootMS()
	}
	s.ready = true
	r := protocol.Ready{
		Version:           protocol.Version,
		AgentVersion:      s.AgentVersion,
		Kernel:            s.Kernel,
		AlreadyConfigured: already,
		Timings:           s.Timings,
	}
	if !already {
		s.logf("ready in %.0fms since kernel start", s.Timings.ReadyMS)
	}
	st.finish(protocol.FrameReady, r)
}

func (s *Server) isReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

func (s *Server) shutdown(st *stream, f protocol.Frame) {
	var req protocol.Shutdown
	if len(f.Payload) > 0 {
		if err := f.Decode(&req); err != nil {
			st.fail("%v", err)
			return
		}
	}
	grace := 3 * time.Second
	if req.GraceMS > 0 {
		grace = time.Duration(req.GraceMS) * time.Millisecond
	}
	s.logf("shutdown requested (grace %v)", grace)
	_ = st.write(protocol.FrameShutdownAck, nil)
	st.finish(0, nil)
	if s.Shutdown != nil {
		go s.Shutdown(grace)
	}
}

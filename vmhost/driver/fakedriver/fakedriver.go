// Package fakedriver is a driver.Driver for tests: a "machine" is a goroutine
// that speaks the guest side of the agent protocol over an in-memory pipe,
// with a handful of built-in commands instead of real processes. It lets the
// supervisor, daemon and API be tested without a hypervisor.
//
// Built-in commands (argv[0]): echo, cat, true, false, env, pwd, whoami,
// exit N, sleep (until signalled or stdin closes), and /bin/sh -c SCRIPT with
// two recognised scripts: the agents table's PATH probe (`command -v`, true
// for names in Guest.Binaries) and its login shell, which runs a line
// interpreter of the same commands. Anything else exits 127.
package fakedriver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Driver is a fake driver. Zero value usable.
type Driver struct {
	// Binaries are the names `command -v` finds; default sh, cat, echo.
	Binaries []string
	// BootDelay is how long Ready takes.
	BootDelay time.Duration
	// FailBoot makes Start fail with this error.
	FailBoot error

	mu       sync.Mutex
	Machines []*Machine
	starts   atomic.Int32
}

// Starts is how many machines were started.
func (d *Driver) Starts() int { return int(d.starts.Load()) }

func (d *Driver) Name() string { return "fake" }
func (d *Driver) Capabilities() driver.Capabilities {
	return driver.Capabilities{Arches: []string{"amd64", "arm64"}, Shares: []driver.ShareKind{driver.Share9P}, Channel: driver.ChannelVirtioSerial, DiskFormats: []string{"raw"}}
}
func (d *Driver) Available() error { return nil }

func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Machine, error) {
	if d.FailBoot != nil {
		return nil, d.FailBoot
	}
	d.starts.Add(1)
	bins := d.Binaries
	if bins == nil {
		bins = []string{"sh", "cat", "echo"}
	}
	m := &Machine{spec: spec, done: make(chan struct{}), bins: bins, delay: d.BootDelay}
	d.mu.Lock()
	d.Machines = append(d.Machines, m)
	d.mu.Unlock()
	return m, nil
}

// Assets returns an asset set whose files need not exist (the fake driver
// never reads them).
func Assets(dir string) *assets.Set {
	return &assets.Set{Dir: dir, Manifest: assets.Manifest{Arch: "amd64", Kernel: "vmlinuz", Initrd: "initrd", Modules: "modules.ext4", Base: "base.ext4"}}
}

// Machine is one fake VM.
type Machine struct {
	spec  driver.Spec
	bins  []string
	delay time.Duration

	once   sync.Once
	done   chan struct{}
	mu     sync.Mutex
	dialed bool
	// Resizes records every resize frame received.
	Resizes []protocol.WindowSize
	// Execs records every exec request (env included: tests check it travels).
	Execs []protocol.ExecRequest
}

func (m *Machine) Spec() driver.Spec { return m.spec }

func (m *Machine) Layout() driver.Layout {
	l := driver.Layout{Disks: map[string]protocol.Disk{}}
	for i, d := range m.spec.Disks {
		l.Disks[d.ID] = protocol.Disk{Serial: d.ID, Index: i}
	}
	for _, s := range m.spec.Shares {
		l.Mounts = append(l.Mounts, protocol.Mount{Type: protocol.Mount9P, Tag: s.Tag, Path: s.HostPath, ReadOnly: s.ReadOnly})
	}
	return l
}

func (m *Machine) DialAgent(ctx context.Context) (net.Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dialed {
		return nil, errors.New("fake: agent channel already connected")
	}
	m.dialed = true
	host, guest := net.Pipe()
	go m.serve(guest)
	return host, nil
}

func (m *Machine) stop() { m.once.Do(func() { close(m.done) }) }

func (m *Machine) Shutdown(ctx context.Context) error { m.stop(); return nil }
func (m *Machine) Kill() error                        { m.stop(); return nil }
func (m *Machine) Done() <-chan struct{}              { return m.done }
func (m *Machine) Err() error                         { return nil }
func (m *Machine) Info() driver.Info {
	st := driver.StateRunning
	select {
	case <-m.done:
		st = driver.StateStopped
	default:
	}
	return driver.Info{Driver: "fake", Accel: "none", State: st}
}

func (m *Machine) serve(conn net.Conn) {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Server(conn, cfg)
	if err != nil {
		return
	}
	go func() { <-m.done; sess.Close() }()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go m.stream(st)
	}
}

func (m *Machine) stream(st *yamux.Stream) {
	defer st.Close()
	f, err := protocol.ReadFrame(st)
	if err != nil {
		return
	}
	switch f.Type {
	case protocol.FrameHello:
		time.Sleep(m.delay)
		protocol.WriteJSON(st, protocol.FrameReady, protocol.Ready{Version: protocol.Version, AgentVersion: "fake", Kernel: "fake"})
	case protocol.FrameShutdown:
		protocol.WriteFrame(st, protocol.FrameShutdownAck, nil)
		go func() { time.Sleep(10 * time.Millisecond); m.stop() }()
	case protocol.FrameExec:
		var req protocol.ExecRequest
		if err := f.Decode(&req); err != nil {
			return
		}
		m.mu.Lock()
		m.Execs = append(m.Execs, req)
		m.mu.Unlock()
		m.exec(st, req)
	}
}

type proc struct {
	st     *yamux.Stream
	wmu    sync.Mutex
	stdin  *io.PipeReader
	sig    chan int
	tty    bool
	req    protocol.ExecRequest
	m      *Machine
	closed chan struct{}
}

func (p *proc) out(b []byte) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	protocol.WriteData(p.st, protocol.FrameStdout, b)
}

func (p *proc) errOut(b []byte) {
	t := protocol.FrameStderr
	if p.tty {
		t = protocol.FrameStdout
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	protocol.WriteData(p.st, t, b)
}

func (m *Machine) exec(st *yamux.Stream, req protocol.ExecRequest) {
	if len(req.Argv) == 0 {
		protocol.WriteJSON(st, protocol.FrameExit, protocol.ExitStatus{Code: 127, Error: "empty command"})
		return
	}
	pr, pw := io.Pipe()
	p := &proc{st: st, stdin: pr, sig: make(chan int, 4), tty: req.TTY, req: req, m: m, closed: make(chan struct{})}
	if !req.Stdin {
		pw.Close()
	}
	protocol.WriteJSON(st, protocol.FrameStarted, protocol.Started{PID: 100 + len(m.Execs)})
	// Reader of host frames.
	go func() {
		defer close(p.closed)
		for {
			f, err := protocol.ReadFrame(st)
			if err != nil {
				pw.CloseWithError(io.EOF)
				select {
				case p.sig <- 1: // SIGHUP
				default:
				}
				return
			}
			switch f.Type {
			case protocol.FrameStdin:
				pw.Write(f.Payload)
			case protocol.FrameStdinEOF:
				pw.Close()
			case protocol.FrameResize:
				var ws protocol.WindowSize
				f.Decode(&ws)
				m.mu.Lock()
				m.Resizes = append(m.Resizes, ws)
				m.mu.Unlock()
				if p.tty {
					p.out(fmt.Appendf(nil, "[resize %dx%d]\r\n", ws.Rows, ws.Cols))
				}
			case protocol.FrameSignal:
				var s protocol.Signal
				f.Decode(&s)
				select {
				case p.sig <- s.Signal:
				default:
				}
			}
		}
	}()
	code, msg := p.run(req.Argv)
	p.wmu.Lock()
	protocol.WriteJSON(st, protocol.FrameExit, protocol.ExitStatus{Code: code, Error: msg})
	p.wmu.Unlock()
}

func (p *proc) has(bin string) bool {
	for _, b := range p.m.bins {
		if b == bin {
			return true
		}
	}
	return false
}

// run interprets argv and returns the exit code.
func (p *proc) run(argv []string) (int, string) {
	if argv[0] == "/bin/sh" && len(argv) >= 3 && argv[1] == "-c" {
		script := argv[2]
		switch {
		case strings.HasPrefix(script, "command -v"):
			if len(argv) >= 5 && p.has(argv[4]) {
				return 0, ""
			}
			return 1, ""
		case strings.Contains(script, "exec bash -l"):
			return p.shell(), ""
		default:
			return p.line(script), ""
		}
	}
	return p.cmd(argv)
}

// shell is a line interpreter: each line is a command; `exit N` ends it.
func (p *proc) shell() int {
	p.out([]byte("$ "))
	sc := bufio.NewScanner(p.stdin)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	for {
		select {
		case s := <-p.sig:
			if s == 1 {
				return 129
			}
			p.out([]byte("^C\r\n$ "))
		case l, ok := <-lines:
			if !ok {
				return 0
			}
			f := strings.Fields(l)
			if len(f) > 0 && f[0] == "exit" {
				n := 0
				if len(f) > 1 {
					n, _ = strconv.Atoi(f[1])
				}
				return n
			}
			p.line(l)
			p.out([]byte("$ "))
		}
	}
}

func (p *proc) line(l string) int {
	f := strings.Fields(l)
	if len(f) == 0 {
		return 0
	}
	code, msg := p.cmd(f)
	if msg != "" {
		p.errOut([]byte(msg + "\n"))
	}
	return code
}

func (p *proc) cmd(argv []string) (int, string) {
	nl := "\n"
	if p.tty {
		nl = "\r\n"
	}
	switch argv[0] {
	case "echo":
		p.out([]byte(strings.Join(argv[1:], " ") + nl))
	case "true":
	case "false":
		return 1, ""
	case "exit":
		if len(argv) > 1 {
			n, _ := strconv.Atoi(argv[1])
			return n, ""
		}
	case "cat":
		buf := make([]byte, 4096)
		for {
			n, err := p.stdin.Read(buf)
			if n > 0 {
				p.out(buf[:n])
			}
			if err != nil {
				break
			}
		}
	case "env":
		for _, e := range p.req.Env {
			p.out([]byte(e + nl))
		}
	case "pwd":
		p.out([]byte(p.req.Dir + nl))
	case "whoami":
		u := p.req.User
		if u == "" {
			u = protocol.DefaultUser
		}
		p.out([]byte(u + nl))
	case "sleep":
		s := <-p.sig
		return 128 + s, ""
	default:
		return 127, fmt.Sprintf("%s: not found", argv[0])
	}
	return 0, ""
}

//go:build linux

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/passwd"
	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// DrainTimeout is how long output is still forwarded after the process exits
// (a background child may hold the pipe or terminal open).
var DrainTimeout = time.Second

// startError is a failure before the process runs: it ends the stream with
// exit 126 or 127 and a reason.
type startError struct {
	code int
	msg  string
}

func (e *startError) Error() string { return e.msg }

func notFound(format string, a ...any) error {
	return &startError{127, fmt.Sprintf(format, a...)}
}
func cannotRun(format string, a ...any) error {
	return &startError{126, fmt.Sprintf(format, a...)}
}

// process is one running exec.
type process struct {
	pid  int
	tty  bool
	ptmx *os.File // tty only
	in   *os.File // stdin write end (pipes with Stdin) or nil
	outs []*os.File
	done <-chan reaper.Status

	mu     sync.Mutex
	exited bool
}

func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited {
		return nil // reaped: the pid may already belong to someone else
	}
	target := p.pid
	if p.tty {
		target = -p.pid // the session leader's process group
	}
	return unix.Kill(target, sig)
}

func (s *Server) exec(st *stream, f protocol.Frame) {
	var req protocol.ExecRequest
	if err := f.Decode(&req); err != nil {
		st.fail("%v", err)
		return
	}
	if !s.isReady() {
		st.fail("exec before hello: open a hello stream and wait for ready first")
		return
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		st.fail("exec: empty argv")
		return
	}
	p, err := s.start(&req)
	if err != nil {
		var se *startError
		if !errors.As(err, &se) {
			se = &startError{126, err.Error()}
		}
		s.logf("exec %s: exit %d: %s", req.Argv[0], se.code, se.msg)
		st.finish(protocol.FrameExit, protocol.ExitStatus{Code: se.code, Error: se.msg})
		return
	}
	s.logf("exec %s: pid %d (tty=%v)", req.Argv[0], p.pid, req.TTY)
	_ = st.writeJSON(protocol.FrameStarted, protocol.Started{PID: p.pid})

	// Output: one goroutine per source; they keep draining (and discarding)
	// if the stream dies, so the process never blocks on a full pipe.
	var outWG sync.WaitGroup
	forward := func(r *os.File, t protocol.FrameType) {
		defer outWG.Done()
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_ = st.write(t, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}
	if p.tty {
		outWG.Add(1)
		go forward(p.ptmx, protocol.FrameStdout)
	} else {
		outWG.Add(2)
		go forward(p.outs[0], protocol.FrameStdout)
		go forward(p.outs[1], protocol.FrameStderr)
	}

	// Input.
	go s.input(st, p, &req)

	status := <-p.done
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()

	drained := make(chan struct{})
	go func() { outWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(DrainTimeout):
	}
	code, sig := status.Code()
	s.logf("exec %s: pid %d exited with code %d", req.Argv[0], p.pid, code)
	st.finish(protocol.FrameExit, protocol.ExitStatus{Code: code, Signal: sig})
	// Unblock readers stuck on output held open by background children.
	if p.tty {
		p.ptmx.Close()
	} else {
		for _, o := range p.outs {
			o.Close()
		}
	}
	p.mu.Lock()
	if p.in != nil {
		p.in.Close()
		p.in = nil
	}
	p.mu.Unlock()
}

// input handles host→guest frames of a running exec.
func (s *Server) input(st *stream, p *process, req *protocol.ExecRequest) {
	// Stdin writes go through a queue so a process that does not read its
	// input cannot block resize and signal frames.
	stdin := make(chan []byte, 64)
	go func() {
		for b := range stdin {
			p.mu.Lock()
			w := p.in
			if p.tty {
				w = p.ptmx
			}
			p.mu.Unlock()
			if b == nil { // EOF marker
				if p.tty {
					_, _ = w.Write([]byte{4}) // ^D: end of input on a terminal in canonical mode
				} else {
					p.mu.Lock()
					if p.in != nil {
						p.in.Close()
						p.in = nil
					}
					p.mu.Unlock()
				}
				continue
			}
			if w != nil {
				if _, err := w.Write(b); err != nil && !p.tty {
					// The process closed its stdin; drop further input.
					p.mu.Lock()
					if p.in != nil {
						p.in.Close()
						p.in = nil
					}
					p.mu.Unlock()
				}
			}
		}
	}()
	defer close(stdin)
	eof := false
	for {
		f, err := protocol.ReadFrame(st.c)
		if err != nil {
			p.mu.Lock()
			exited := p.exited
			p.mu.Unlock()
			if exited || st.sess.IsClosed() {
				// Normal end, or the session went away: processes keep running.
				return
			}
			// The host closed or reset the stream before exit, or broke the
			// framing (which ends the stream): hang up, like a terminal.
			s.logf("exec pid %d: stream ended before exit (%v); sending SIGHUP", p.pid, err)
			_ = p.signal(syscall.SIGHUP)
			if isProtocolError(err) {
				st.fail("exec: %v", err)
			} else {
				st.finish(0, nil)
			}
			return
		}
		switch f.Type {
		case protocol.FrameStdin:
			if req.Stdin && !eof && len(f.Payload) > 0 {
				stdin <- f.Payload
			}
		case protocol.FrameStdinEOF:
			if req.Stdin && !eof {
				eof = true
				stdin <- nil
			}
		case protocol.FrameResize:
			var ws protocol.WindowSize
			if err := f.Decode(&ws); err == nil && p.tty && ws.Rows > 0 && ws.Cols > 0 {
				_ = pty.Setsize(p.ptmx, &pty.Winsize{Rows: ws.Rows, Cols: ws.Cols})
			}
		case protocol.FrameSignal:
			var sg protocol.Signal
			if err := f.Decode(&sg); err == nil && sg.Signal > 0 && sg.Signal < 65 {
				_ = p.signal(syscall.Signal(sg.Signal))
			}
		default:
			// A frame that makes no sense here: ignore it rather than kill the process.
			s.logf("exec pid %d: ignoring unexpected %s frame", p.pid, f.Type)
		}
	}
}

// start resolves the request and forks the process.
func (s *Server) start(req *protocol.ExecRequest) (*process, error) {
	root := s.Root
	if root == "" {
		root = "/"
	}
	spec := req.User
	if spec == "" {
		spec = protocol.DefaultUser
	}
	u, err := passwd.Lookup(root, spec)
	if err != nil {
		return nil, cannotRun("%v", err)
	}
	env := passwd.Env(req.Env, u, req.TTY)
	dir := req.Dir
	if dir == "" {
		dir = u.Home
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = "/"
		}
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, cannotRun("working directory %s: %v", dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return nil, cannotRun("working directory %s: not a directory", dir)
	}
	path, err := lookPath(req.Argv[0], passwd.Getenv(env, "PATH"), dir)
	if err != nil {
		return nil, err
	}

	attr := &syscall.ProcAttr{Dir: dir, Env: env, Sys: &syscall.SysProcAttr{Setsid: true}}
	if os.Getuid() == 0 || u.UID != uint32(os.Getuid()) {
		attr.Sys.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}
		if u.Groups == nil {
			attr.Sys.Credential.Groups = []uint32{}
		}
	}

	p := &process{tty: req.TTY}
	var childFiles []*os.File // closed in the parent after the fork
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()
	fail := func(err error) (*process, error) {
		for _, f := range []*os.File{p.ptmx, p.in} {
			if f != nil {
				f.Close()
			}
		}
		for _, f := range p.outs {
			f.Close()
		}
		return nil, err
	}
	if req.TTY {
		ptmx, tty, err := pty.Open()
		if err != nil {
			return fail(cannotRun("open pty: %v", err))
		}
		p.ptmx = ptmx
		childFiles = append(childFiles, tty)
		rows, cols := req.Size.Rows, req.Size.Cols
		if rows == 0 || cols == 0 {
			rows, cols = 24, 80
		}
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
			return fail(cannotRun("set pty size: %v", err))
		}
		attr.Files = []uintptr{tty.Fd(), tty.Fd(), tty.Fd()}
		attr.Sys.Setctty = true
		attr.Sys.Ctty = 0
	} else {
		var stdinR *os.File
		if req.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(cannotRun("pipe: %v", err))
			}
			stdinR, p.in = r, w
		} else {
			r, err := os.Open(os.DevNull)
			if err != nil {
				return fail(cannotRun("open /dev/null: %v", err))
			}
			stdinR = r
		}
		childFiles = append(childFiles, stdinR)
		or, ow, err := os.Pipe()
		if err != nil {
			return fail(cannotRun("pipe: %v", err))
		}
		er, ew, err := os.Pipe()
		if err != nil {
			or.Close()
			ow.Close()
			return fail(cannotRun("pipe: %v", err))
		}
		p.outs = []*os.File{or, er}
		childFiles = append(childFiles, ow, ew)
		attr.Files = []uintptr{stdinR.Fd(), ow.Fd(), ew.Fd()}
	}

	pid, done, err := s.Reaper.Start(func() (int, error) {
		return syscall.ForkExec(path, req.Argv, attr)
	})
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT):
			return fail(notFound("%s: %v", path, err))
		default:
			// The error may come from setgroups/setuid, chdir or execve.
			return fail(cannotRun("start %s in %s as uid %d: %v", path, dir, u.UID, err))
		}
	}
	p.pid, p.done = pid, done
	return p, nil
}

// lookPath finds file like a shell would: a name containing a slash is used
// as is (relative to dir), else it is searched in pathEnv. Not found is 127;
// found but not executable is 126.
func lookPath(file, pathEnv, dir string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return syscall.EISDIR
		}
		if fi.Mode()&0o111 == 0 {
			return syscall.EACCES
		}
		return nil
	}
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := check(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", notFound("%s: no such file or directory", file)
			}
			return "", cannotRun("%s: %v", file, unwrapPath(err))
		}
		return p, nil
	}
	var denied error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, file)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) && denied == nil {
			denied = cannotRun("%s: %v", p, unwrapPath(err))
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", notFound("%s: command not found in $PATH", file) // never echo env values: they may hold secrets
}

// isProtocolError tells framing errors (unknown type, oversized or truncated
// frame) from the stream simply ending.
func isProtocolError(err error) bool {
	if errors.Is(err, protocol.ErrFrameTooLarge) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return strings.HasPrefix(err.Error(), "protocol: ")
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

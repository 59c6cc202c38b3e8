package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/sandbox"
)

var (
	termMu      sync.Mutex
	termRestore func()
)

// restoreTerminal undoes raw mode if it is on; safe to call any time.
func restoreTerminal() {
	termMu.Lock()
	defer termMu.Unlock()
	if termRestore != nil {
		termRestore()
		termRestore = nil
	}
}

func makeRaw(fd int) error {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return err
	}
	termMu.Lock()
	termRestore = func() { term.Restore(fd, old) }
	termMu.Unlock()
	return nil
}

func isTerminal(f any) (int, bool) {
	if f, ok := f.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return int(f.Fd()), true
	}
	return -1, false
}

// attach runs req in the sandbox with this process's stdio and returns the
// remote exit code. With req.TTY and a terminal on stdin, the terminal is
// raw for the session (Ctrl-C and Ctrl-Z travel as bytes) and its size
// follows every resize.
func (g *globals) attach(ctx context.Context, c *api.Client, name string, req api.ExecRequest) (int, error) {
	inFd, inTTY := isTerminal(g.stdin)
	if req.TTY && inTTY {
		if w, h, err := term.GetSize(inFd); err == nil {
			req.Size.Cols, req.Size.Rows = uint16(w), uint16(h)
		}
	}
	if req.TTY && req.Size.Rows == 0 {
		req.Size.Rows, req.Size.Cols = 24, 80
	}
	conn, err := c.Exec(ctx, name, req)
	if err != nil {
		return 0, err
	}
	s, err := api.NewSession(conn)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	raw := false
	if req.TTY && inTTY {
		if err := makeRaw(inFd); err == nil {
			raw = true
			defer restoreTerminal()
		}
	}
	stopSig := watchSignals(s, inFd, req.TTY && inTTY, raw)
	defer stopSig()
	if req.TTY && inTTY { // a resize between the request and the watcher
		if w, h, err := term.GetSize(inFd); err == nil && (uint16(w) != req.Size.Cols || uint16(h) != req.Size.Rows) {
			s.Resize(uint16(h), uint16(w))
		}
	}
	if req.Stdin {
		go s.CopyStdin(g.stdin)
	}
	stdout, stderr := g.stdout, g.stderr
	st, err := s.Wait(stdout, stderr)
	if raw {
		restoreTerminal()
	}
	if st.Error != "" {
		fmt.Fprintf(g.stderr, "moat: %s\n", st.Error)
	}
	if err != nil || st.Code == 137 || st.Code == 143 {
		// Killed (a stopping guest sends SIGTERM, then SIGKILL), or the
		// stream broke: say so when it was the sandbox that went away,
		// rather than end with a bare exit status.
		tries := 2
		if err != nil {
			tries = 5
		}
		if why := g.sandboxGone(c, name, tries); why != "" {
			if req.TTY && inTTY {
				fmt.Fprint(g.stderr, "\r\n")
			}
			fmt.Fprintf(g.stderr, "moat: %s\n", why)
			if err != nil {
				return 0, exitError{137}
			}
		}
	}
	if err != nil {
		return 0, err
	}
	return st.Code, nil
}

// sandboxGone says how a session's sandbox ended, or "" while it runs.
func (g *globals) sandboxGone(c *api.Client, name string, tries int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The daemon notices a stop within its poll interval; give it a moment.
	for i := 0; ; i++ {
		sb, err := c.Get(ctx, name)
		if err != nil {
			if errors.Is(err, sandbox.ErrNotFound) {
				return fmt.Sprintf("sandbox %s was removed; the session ended", name)
			}
			return ""
		}
		switch sb.Status {
		case api.StatusStopped, api.StatusStopping:
			return fmt.Sprintf("sandbox %s stopped; the session ended (`moat run %s` starts it again)", name, name)
		case api.StatusError:
			return fmt.Sprintf("sandbox %s stopped: %s; the session ended (see `moat logs %s`)", name, firstLine(sb.Reason, 200), name)
		}
		if i+1 >= tries {
			return ""
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(150 * time.Millisecond):
		}
	}
}

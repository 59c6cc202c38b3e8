package cli

import (
	"fmt"
	"io"
	"sync"
)

// progress shows what is happening on one updating line of stderr (a line
// per phase when stderr is not a terminal); quiet silences it.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	name  string

	mu    sync.Mutex
	shown bool
	last  string
}

func (g *globals) newProgress(name string, quiet bool) *progress {
	_, tty := isTerminal(g.stderr)
	return &progress{w: g.stderr, tty: tty, quiet: quiet, name: name}
}

func (p *progress) Phase(phase string) {
	if p == nil || p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase == p.last {
		return
	}
	p.last = phase
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s: %s…", p.name, phase)
	} else {
		fmt.Fprintf(p.w, "moat: %s: %s\n", p.name, phase)
	}
	p.shown = true
}

// Done clears the line.
func (p *progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.shown = false
}

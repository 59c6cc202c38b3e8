package template

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Progress is told what a pull or conversion is doing. The CLI passes one
// in: bars on a terminal (NewTerminalProgress), plain lines otherwise
// (NewLineProgress); Discard says nothing.
type Progress interface {
	// Phase announces a step ("pulling X", "building the base disk").
	Phase(msg string)
	// Bar tracks one transfer (a layer download, the conversion) of total
	// bytes (<= 0: unknown).
	Bar(label string, total int64) Bar
	// Wait flushes what is on screen; call it once at the end.
	Wait()
}

// Bar is one progress bar.
type Bar interface {
	Set(done int64)
	Done()
}

// Discard is a Progress that reports nothing.
var Discard Progress = discard{}

type discard struct{}

func (discard) Phase(string)          {}
func (discard) Bar(string, int64) Bar { return nopBar{} }
func (discard) Wait()                 {}
func (nopBar) Set(int64)              {}
func (nopBar) Done()                  {}

type nopBar struct{}

// AutoProgress picks bars when f is a terminal (with a width) and lines
// otherwise.
func AutoProgress(f *os.File) Progress {
	if term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return NewTerminalProgress(f)
		}
	}
	return NewLineProgress(f)
}

// NewLineProgress writes one line per phase, per bar start and end, and a
// line per bar at most every 5 seconds in between.
func NewLineProgress(w io.Writer) Progress { return &lines{w: w} }

type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) Phase(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, msg)
}

func (l *lines) Bar(label string, total int64) Bar {
	l.mu.Lock()
	fmt.Fprintf(l.w, "%s: %s\n", label, sizeOf(0, total))
	l.mu.Unlock()
	return &lineBar{l: l, label: label, total: total, last: time.Now()}
}

func (l *lines) Wait() {}

type lineBar struct {
	l     *lines
	label string
	total int64
	done  int64
	last  time.Time
	ended bool
}

func (b *lineBar) Set(done int64) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	b.done = done
	if time.Since(b.last) >= 5*time.Second {
		b.last = time.Now()
		fmt.Fprintf(b.l.w, "%s: %s\n", b.label, sizeOf(done, b.total))
	}
}

func (b *lineBar) Done() {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	fmt.Fprintf(b.l.w, "%s: done, %s\n", b.label, mib(b.done))
}

func sizeOf(done, total int64) string {
	if total <= 0 {
		return mib(done)
	}
	return fmt.Sprintf("%s / %s", mib(done), mib(total))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// NewTerminalProgress draws bars (bytes done / total per layer) on w.
func NewTerminalProgress(w io.Writer) Progress {
	return &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond)), w: w}
}

type bars struct {
	p *mpb.Progress
	w io.Writer
}

func (b *bars) Phase(msg string) { fmt.Fprintln(b.p, msg) }

func (b *bars) Bar(label string, total int64) Bar {
	if total <= 0 {
		total = 0
	}
	bar := b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)),
	)
	return &termBar{b: bar, total: total}
}

func (b *bars) Wait() { b.p.Wait() }

type termBar struct {
	b     *mpb.Bar
	total int64
}

func (t *termBar) Set(done int64) {
	if t.total == 0 || done > t.total {
		t.b.SetTotal(done+1, false)
	}
	t.b.SetCurrent(done)
}

func (t *termBar) Done() { t.b.SetTotal(-1, true) }

package tray

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeNode struct {
	it       Item
	children []*fakeNode
	ch       chan struct{}
	icon     []byte
}

type fake struct {
	mu      sync.Mutex
	top     []*fakeNode
	icon    []byte
	title   string
	tip     string
	resets  int
	renders chan struct{}
}

func (f *fake) Reset() {
	f.mu.Lock()
	f.top = nil
	f.resets++
	f.mu.Unlock()
}
func (f *fake) SetIcon(b []byte)  { f.icon = b }
func (f *fake) SetTitle(s string) { f.title = s }
func (f *fake) SetTooltip(s string) {
	f.tip = s
	select {
	case f.renders <- struct{}{}:
	default:
	}
}
func (f *fake) Add(parent Node, it Item, icon []byte) (Node, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &fakeNode{it: it, ch: make(chan struct{}, 1), icon: icon}
	if p, ok := parent.(*fakeNode); ok && p != nil {
		p.children = append(p.children, n)
	} else {
		f.top = append(f.top, n)
	}
	return n, n.ch
}
func (f *fake) AddSeparator(parent Node) { f.Add(parent, Item{Label: "---"}, nil) }

func (f *fake) find(label string) *fakeNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	var walk func([]*fakeNode) *fakeNode
	walk = func(ns []*fakeNode) *fakeNode {
		for _, n := range ns {
			if n.it.Label == label {
				return n
			}
			if c := walk(n.children); c != nil {
				return c
			}
		}
		return nil
	}
	return walk(f.top)
}

func (f *fake) dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	var walk func([]*fakeNode, string)
	walk = func(ns []*fakeNode, ind string) {
		for _, n := range ns {
			fmt.Fprintf(&b, "%s%s\n", ind, n.it.Label)
			walk(n.children, ind+"  ")
		}
	}
	walk(f.top, "")
	return b.String()
}

func wait(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no render")
	}
}

func TestAdapterRebuildsAndRoutesClicks(t *testing.T) {
	f := &fake{renders: make(chan struct{}, 1)}
	tr := New(f)
	go tr.Loop()
	defer tr.Close()

	tr.Show(State{})
	wait(t, f.renders)
	if f.find("No sandboxes yet") == nil || string(f.icon) != string(IconBytes(IconIdle)) {
		t.Fatalf("menu:\n%s", f.dump())
	}
	f.find("Run Claude in folder…").ch <- struct{}{}
	if in := <-tr.Intents(); in.Kind != RunInFolder {
		t.Fatalf("intent %+v", in)
	}

	old := f.find("Quit")
	tr.Show(State{Sandboxes: []Sandbox{{Name: "claude-x", Status: Running, Workspace: "/w"}}})
	wait(t, f.renders)
	want := "Run Claude in folder…\n---\nclaude-x — running\n  Open in terminal\n  Stop\n  Reveal folder\n  ---\n  Remove…\n---\nOpen Moat\nLog in…\n---\nQuit\n"
	if got := f.dump(); got != want {
		t.Fatalf("menu:\n%s", got)
	}
	if f.resets != 2 || f.title != "1" || string(f.icon) != string(IconBytes(IconRunning)) {
		t.Errorf("resets %d title %q", f.resets, f.title)
	}
	if n := f.find("claude-x — running"); string(n.icon) != string(BadgeBytes(BadgeRunning)) {
		t.Error("no running badge")
	}
	// a click on the previous menu's item is not delivered
	old.ch <- struct{}{}
	f.find("Stop").ch <- struct{}{}
	if in := <-tr.Intents(); in != (Intent{Stop, "claude-x"}) {
		t.Fatalf("intent %+v", in)
	}
	select {
	case in := <-tr.Intents():
		t.Fatalf("stale click delivered: %+v", in)
	case <-time.After(50 * time.Millisecond):
	}
	if tr.Last().Running != 1 {
		t.Error("Last")
	}
}

package tray

import (
	"context"
	"runtime"
	"sync"

	"github.com/moatsandbox/moat/assets"
)

// Node is a menu entry the backend created.
type Node any

// Backend is the real menu: fyne.io/systray (systray.go) or a fake in tests.
type Backend interface {
	Reset()
	SetIcon(png []byte)
	SetTitle(string)
	SetTooltip(string)
	// Add adds an entry under parent (nil: top level) and returns it with
	// its click channel.
	Add(parent Node, it Item, icon []byte) (Node, <-chan struct{})
	AddSeparator(parent Node)
}

// Tray shows Menus on a Backend and turns clicks into Intents. One event
// loop (Loop) owns the backend: it rebuilds the whole menu for each new
// snapshot (items cannot be enumerated or moved, so nothing is patched)
// and forwards clicks; each rebuild cancels the previous menu's click
// forwarders.
type Tray struct {
	b       Backend
	updates chan Menu // capacity 1, newest wins
	clicks  chan click
	gen     int // menu generation; owned by Loop
	intents chan Intent
	stop    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	last    Menu
}

// New makes a Tray over b.
func New(b Backend) *Tray {
	return &Tray{b: b, updates: make(chan Menu, 1), clicks: make(chan click), intents: make(chan Intent, 16), stop: make(chan struct{})}
}

// Show replaces the menu with the one for s (asynchronously; only the
// newest pending snapshot is shown).
func (t *Tray) Show(s State) {
	m := Build(s)
	for {
		select {
		case t.updates <- m:
			return
		default:
		}
		select {
		case <-t.updates:
		default:
		}
	}
}

// Intents delivers clicks.
func (t *Tray) Intents() <-chan Intent { return t.intents }

// Last is the menu shown most recently.
func (t *Tray) Last() Menu {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Close ends Loop.
func (t *Tray) Close() { t.once.Do(func() { close(t.stop) }) }

// Loop is the event loop; run it on one goroutine (systray's onReady).
func (t *Tray) Loop() {
	cancel := context.CancelFunc(func() {})
	defer func() { cancel() }()
	for {
		select {
		case <-t.stop:
			return
		case m := <-t.updates:
			cancel()
			t.gen++
			cancel = t.render(m, t.gen)
		case c := <-t.clicks:
			if c.gen != t.gen {
				continue // a click on a menu that was replaced meanwhile
			}
			if in, ok := ParseID(c.id); ok {
				select {
				case t.intents <- in:
				case <-t.stop:
					return
				}
			}
		}
	}
}

// render rebuilds the menu; the returned func stops its click forwarders.
func (t *Tray) render(m Menu, gen int) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	t.mu.Lock()
	t.last = m
	t.mu.Unlock()
	t.b.Reset()
	var add func(parent Node, items []Item)
	add = func(parent Node, items []Item) {
		for _, it := range items {
			if it.Separator {
				t.b.AddSeparator(parent)
				continue
			}
			var icon []byte
			if it.Badge != BadgeNone {
				icon = BadgeBytes(it.Badge)
			}
			n, ch := t.b.Add(parent, it, icon)
			if it.ID != "" && ch != nil {
				go t.forward(ctx, click{gen, it.ID}, ch)
			}
			add(n, it.Children)
		}
	}
	add(nil, m.Items)
	// The icon and tooltip last: they announce a finished menu (tests wait on them).
	t.b.SetIcon(IconBytes(m.Icon))
	t.b.SetTitle(m.Title)
	t.b.SetTooltip(m.Tooltip)
	return cancel
}

// click is a menu item's ID with the menu generation it belongs to.
type click struct {
	gen int
	id  string
}

func (t *Tray) forward(ctx context.Context, id click, ch <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			select {
			case t.clicks <- id:
			case <-ctx.Done():
				return
			}
		}
	}
}

func ext() string {
	if runtime.GOOS == "windows" {
		return ".ico"
	}
	return ".png"
}

// IconBytes is the tray icon for a state, in this OS's format.
func IconBytes(s IconState) []byte { return assets.Icon("tray-" + string(s) + ext()) }

// BadgeBytes is a status badge, in this OS's format.
func BadgeBytes(b Badge) []byte { return assets.Icon("badge-" + string(b) + ext()) }

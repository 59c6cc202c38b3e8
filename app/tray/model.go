// Package tray is the tray (menu bar) face of the desktop app. The model
// (this file) is pure: a State snapshot → a Menu description, with stable
// item IDs that parse back into Intents. The systray adapter (systray.go)
// rebuilds the real menu wholesale from each Menu and turns clicks into
// Intents on a channel, all from one event loop.
package tray

import (
	"fmt"
	"sort"
	"strings"
)

// Status of a sandbox, as the daemon words it.
type Status string

const (
	Running  Status = "running"
	Starting Status = "starting"
	Stopping Status = "stopping"
	Stopped  Status = "stopped"
	Error    Status = "error"
)

// Sandbox is what the tray needs of one sandbox.
type Sandbox struct {
	Name      string
	Agent     string
	Status    Status
	Reason    string
	Workspace string
}

// State is one snapshot.
type State struct {
	Sandboxes []Sandbox
	LoggedIn  bool
	// DaemonError, when set, is why the daemon cannot be reached.
	DaemonError string
}

// Badge is a status marker drawn next to a menu entry (and on the icon).
type Badge string

const (
	BadgeNone     Badge = ""
	BadgeRunning  Badge = "running"
	BadgeStarting Badge = "starting"
	BadgeStopped  Badge = "stopped"
	BadgeError    Badge = "error"
)

// BadgeOf maps a status to its badge (stopping shares starting's: busy).
func BadgeOf(s Status) Badge {
	switch s {
	case Running:
		return BadgeRunning
	case Starting, Stopping:
		return BadgeStarting
	case Error:
		return BadgeError
	default:
		return BadgeStopped
	}
}

// Item is one menu entry.
type Item struct {
	ID        string // "" for a separator or a submenu parent that is not clickable
	Label     string
	Tooltip   string
	Badge     Badge
	Enabled   bool
	Separator bool
	Children  []Item
}

// IconState is the tray icon's overall state.
type IconState string

const (
	IconIdle    IconState = "idle"
	IconRunning IconState = "running"
	IconError   IconState = "error"
)

// Menu is the whole tray: icon, its title/tooltip and the entries.
type Menu struct {
	Icon    IconState
	Running int
	Title   string // next to the icon where the platform shows text ("2")
	Tooltip string
	Items   []Item
}

// Intent kinds.
const (
	RunInFolder = "run-folder"
	OpenWindow  = "open-app"
	Login       = "login"
	Logout      = "logout"
	Quit        = "quit"
	OpenTerm    = "open"
	Start       = "start"
	Stop        = "stop"
	Remove      = "remove"
	Reveal      = "reveal"
)

// Intent is what a click asks for; Name is the sandbox for sandbox actions.
type Intent struct {
	Kind string
	Name string
}

const sbPrefix = "sandbox/"

func sbID(name, action string) string { return sbPrefix + name + "/" + action }

// ParseID turns an item ID back into its Intent.
func ParseID(id string) (Intent, bool) {
	switch id {
	case RunInFolder, OpenWindow, Login, Logout, Quit:
		return Intent{Kind: id}, true
	}
	rest, ok := strings.CutPrefix(id, sbPrefix)
	if !ok {
		return Intent{}, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return Intent{}, false
	}
	name, action := rest[:i], rest[i+1:]
	switch action {
	case OpenTerm, Start, Stop, Remove, Reveal:
		return Intent{Kind: action, Name: name}, true
	}
	return Intent{}, false
}

// statusWord is how a status reads in the menu.
func statusWord(s Sandbox) string {
	switch s.Status {
	case Running, Starting, Stopping, Stopped:
		return string(s.Status)
	case Error:
		return "error"
	}
	return string(s.Status)
}

// Build is the menu for a snapshot.
func Build(s State) Menu {
	sbs := append([]Sandbox(nil), s.Sandboxes...)
	sort.SliceStable(sbs, func(i, j int) bool { return sbs[i].Name < sbs[j].Name })
	m := Menu{Icon: IconIdle}
	errs := 0
	for _, sb := range sbs {
		switch sb.Status {
		case Running:
			m.Running++
		case Error:
			errs++
		}
	}
	switch {
	case s.DaemonError != "" || errs > 0:
		m.Icon = IconError
	case m.Running > 0:
		m.Icon = IconRunning
	}
	if m.Running > 0 {
		m.Title = fmt.Sprint(m.Running)
	}
	switch {
	case s.DaemonError != "":
		m.Tooltip = "Moat: " + s.DaemonError
	case m.Running == 0:
		m.Tooltip = "Moat: no sandbox running"
	case m.Running == 1:
		m.Tooltip = "Moat: 1 sandbox running"
	default:
		m.Tooltip = fmt.Sprintf("Moat: %d sandboxes running", m.Running)
	}
	if errs > 0 {
		m.Tooltip += fmt.Sprintf(", %d with errors", errs)
	}

	daemonOK := s.DaemonError == ""
	m.Items = append(m.Items, Item{ID: RunInFolder, Label: "Run Claude in folder…", Enabled: daemonOK,
		Tooltip: "Choose a project folder: Moat starts its sandbox and opens it in your terminal"})
	m.Items = append(m.Items, Item{Separator: true})
	if !daemonOK {
		m.Items = append(m.Items, Item{Label: "Daemon unavailable: " + s.DaemonError, Badge: BadgeError})
	} else if len(sbs) == 0 {
		m.Items = append(m.Items, Item{Label: "No sandboxes yet"})
	}
	for _, sb := range sbs {
		running := sb.Status == Running
		busy := sb.Status == Starting || sb.Status == Stopping
		label := sb.Name + " — " + statusWord(sb)
		tip := sb.Workspace
		if sb.Reason != "" {
			tip = sb.Reason
			if sb.Status == Error {
				label += ": " + truncate(sb.Reason, 60)
			}
		}
		children := []Item{
			{ID: sbID(sb.Name, OpenTerm), Label: "Open in terminal", Enabled: !busy},
		}
		if running || busy {
			children = append(children, Item{ID: sbID(sb.Name, Stop), Label: "Stop", Enabled: running})
		} else {
			children = append(children, Item{ID: sbID(sb.Name, Start), Label: "Start", Enabled: true})
		}
		children = append(children,
			Item{ID: sbID(sb.Name, Reveal), Label: "Reveal folder", Enabled: sb.Workspace != ""},
			Item{Separator: true},
			Item{ID: sbID(sb.Name, Remove), Label: "Remove…", Enabled: !busy},
		)
		m.Items = append(m.Items, Item{Label: label, Tooltip: tip, Badge: BadgeOf(sb.Status), Enabled: true, Children: children})
	}
	m.Items = append(m.Items, Item{Separator: true})
	m.Items = append(m.Items, Item{ID: OpenWindow, Label: "Open Moat", Enabled: true})
	if s.LoggedIn {
		m.Items = append(m.Items, Item{ID: Logout, Label: "Log out", Enabled: true})
	} else {
		m.Items = append(m.Items, Item{ID: Login, Label: "Log in…", Enabled: true})
	}
	m.Items = append(m.Items, Item{Separator: true}, Item{ID: Quit, Label: "Quit", Enabled: true})
	return m
}

func truncate(s string, n int) string {
	r := []rune(strings.ReplaceAll(s, "\n", " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}

// Find returns the item with id (searching submenus).
func (m Menu) Find(id string) (Item, bool) {
	var walk func([]Item) (Item, bool)
	walk = func(items []Item) (Item, bool) {
		for _, it := range items {
			if it.ID == id {
				return it, true
			}
			if c, ok := walk(it.Children); ok {
				return c, true
			}
		}
		return Item{}, false
	}
	return walk(m.Items)
}

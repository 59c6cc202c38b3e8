package tray

import "fyne.io/systray"

// Systray is the fyne.io/systray Backend. Start the loop the platform's
// way (see app/desktop): Linux RunWithExternalLoop, macOS start() on the
// main thread before Wails runs, Windows systray.Run on a locked thread.
type Systray struct{}

func (Systray) Reset()              { systray.ResetMenu() }
func (Systray) SetIcon(b []byte)    { systray.SetIcon(b) }
func (Systray) SetTitle(s string)   { systray.SetTitle(s) }
func (Systray) SetTooltip(s string) { systray.SetTooltip(s) }

func (Systray) Add(parent Node, it Item, icon []byte) (Node, <-chan struct{}) {
	var mi *systray.MenuItem
	if p, ok := parent.(*systray.MenuItem); ok && p != nil {
		mi = p.AddSubMenuItem(it.Label, it.Tooltip)
	} else {
		mi = systray.AddMenuItem(it.Label, it.Tooltip)
	}
	if icon != nil {
		mi.SetIcon(icon)
	}
	if !it.Enabled {
		mi.Disable()
	}
	return mi, mi.ClickedCh
}

func (Systray) AddSeparator(parent Node) {
	if p, ok := parent.(*systray.MenuItem); ok && p != nil {
		p.AddSeparator()
		return
	}
	systray.AddSeparator()
}

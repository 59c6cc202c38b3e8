//go:build !darwin && !windows

package desktop

import "fyne.io/systray"

// startTray on Linux (StatusNotifierItem over D-Bus, no loop coupling):
// RunWithExternalLoop before wails.Run, start() in OnStartup, end() in
// OnShutdown (FACTS.md "Desktop on Linux").
func startTray(onReady func()) (inStartup, end func()) {
	start, stop := systray.RunWithExternalLoop(onReady, nil)
	return start, stop
}

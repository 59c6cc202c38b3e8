//go:build windows

package desktop

import (
	"runtime"

	"fyne.io/systray"
)

// startTray on Windows: the tray's hidden window belongs to the thread
// that created it, and only that thread's GetMessage loop sees its
// messages, so systray.Run gets an OS thread of its own for good.
// Cross-compiled only: not run.
func startTray(onReady func()) (inStartup, end func()) {
	go func() {
		runtime.LockOSThread()
		systray.Run(onReady, nil)
	}()
	return func() {}, systray.Quit
}

//go:build darwin

package desktop

import "fyne.io/systray"

// startTray on macOS: the status item must be created on the main thread,
// and Wails calls OnStartup on a goroutine, so start() runs here, in main()
// before wails.Run (the main goroutine is locked to the main thread by the
// init of both systray and Wails). systray's start does not take over the
// app delegate; Wails then runs [NSApp run], which drives both.
// Type-checked only (build/typecheck-darwin.sh): not run.
func startTray(onReady func()) (inStartup, end func()) {
	start, stop := systray.RunWithExternalLoop(onReady, nil)
	start()
	return func() {}, stop
}

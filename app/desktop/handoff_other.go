//go:build !linux

package desktop

// handOff: on macOS and Windows Wails checks its single-instance lock
// before OnStartup and exits the second instance with status 0.
func handOff(string, []string, string) bool { return false }

// Package testlog gives tests a log function that background goroutines may
// keep calling after the test has ended.
//
// Passing t.Logf to a server or supervisor is tempting but wrong: their
// goroutines (yamux's send loop, a reaper, a watcher) can log a line after the
// test returns, and the testing package panics on that ("Log in goroutine
// after Test... has completed"), failing a run that was otherwise green.
package testlog

import (
	"sync"
	"testing"
)

// Func returns a printf-style logger that writes to t's log while the test
// runs and drops lines once t's cleanups have started.
func Func(t testing.TB) func(format string, args ...any) {
	t.Helper()
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		t.Logf(format, args...)
	}
}

package testlog

import (
	"sync"
	"testing"
)

// TestLateLinesAreDropped logs from a goroutine that outlives its subtest;
// with t.Logf in place of Func this panics the test binary.
func TestLateLinesAreDropped(t *testing.T) {
	var logf func(string, ...any)
	var started sync.WaitGroup
	release := make(chan struct{})
	finished := make(chan struct{})
	t.Run("inner", func(t *testing.T) {
		logf = Func(t)
		logf("during the test: %d", 1)
		started.Add(1)
		go func() {
			started.Done()
			<-release
			logf("after the test: %d", 2)
			close(finished)
		}()
		started.Wait()
	})
	close(release)
	<-finished
}

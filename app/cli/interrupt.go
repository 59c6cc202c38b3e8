package cli

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// watchInterrupt returns a context that is cancelled when the user presses
// Ctrl-C (or the process gets SIGTERM) before stop is called, and a function
// telling whether that happened. While it watches, the signals do not kill
// the process, so the caller can say what the interruption left behind.
func watchInterrupt(ctx context.Context) (context.Context, func() bool, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var hit atomic.Bool
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			hit.Store(true)
			cancel()
		case <-done:
		}
	}()
	var stopped atomic.Bool
	stop := func() {
		if stopped.Swap(true) {
			return
		}
		signal.Stop(ch)
		close(done)
		cancel()
	}
	return ctx, hit.Load, stop
}

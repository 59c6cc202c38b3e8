package cli

import (
	"os"
	"os/signal"

	"github.com/moatsandbox/moat/vmhost/api"
)

// watchSignals forwards Ctrl-C (as SIGINT) when not in raw mode. Windows has
// no SIGWINCH; the size is sent once at start.
func watchSignals(s *api.Session, fd int, tty, raw bool) func() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				s.Signal(2)
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

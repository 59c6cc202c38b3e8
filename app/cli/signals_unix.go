//go:build !windows

package cli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/moatsandbox/moat/vmhost/api"
)

// watchSignals forwards window size changes (tty) and termination signals
// to the remote process. In raw mode the terminal sends Ctrl-C and Ctrl-Z as
// bytes, so SIGINT only comes from outside (kill); it is forwarded too.
func watchSignals(s *api.Session, fd int, tty, raw bool) func() {
	ch := make(chan os.Signal, 8)
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}
	if tty {
		sigs = append(sigs, syscall.SIGWINCH)
	}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				if sig == syscall.SIGWINCH {
					if w, h, err := term.GetSize(fd); err == nil {
						s.Resize(uint16(h), uint16(w))
					}
					continue
				}
				s.Signal(int(sig.(syscall.Signal)))
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

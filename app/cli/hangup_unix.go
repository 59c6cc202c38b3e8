//go:build !windows

package cli

import (
	"os/signal"
	"syscall"
)

func ignoreHangup() { signal.Ignore(syscall.SIGHUP) }

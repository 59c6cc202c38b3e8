//go:build linux

// Package boot is everything the guest agent does as PID 1 of a sandbox VM:
// early mounts, loading the initramfs's kernel modules, finding the agent
// channel (virtio-serial port or vsock) and serving the protocol on it,
// applying the sandbox config (clock, hostname, overlay root and switch_root,
// modules disk, default user, shares, network), and shutting down.
//
// Every phase logs one line to /dev/console, which the host keeps as the
// VM's console.log. Exec environments are never logged: secrets travel there.
package boot

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Logger writes "moat-guest: ..." lines.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogger logs to w.
func NewLogger(w io.Writer) *Logger { return &Logger{w: w} }

// ConsoleLogger logs to /dev/console, or stderr if it cannot be opened.
func ConsoleLogger() (*Logger, *os.File) {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return NewLogger(os.Stderr), os.Stderr
	}
	return NewLogger(f), f
}

// Printf logs one line.
func (l *Logger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "moat-guest: "+format+"\n", args...)
}

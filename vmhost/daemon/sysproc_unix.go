//go:build !windows

package daemon

import "syscall"

// detached puts a child in its own session: no controlling terminal, and
// signals to the daemon's process group do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// Detached is detached for other packages (the CLI starting the daemon).
func Detached() *syscall.SysProcAttr { return detached() }

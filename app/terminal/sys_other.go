//go:build !windows

package terminal

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr puts the terminal in a session of its own, so it outlives
// the app and gets no signals meant for it.
func setSysProcAttr(cmd *exec.Cmd, _ Command) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

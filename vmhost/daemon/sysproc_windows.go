package daemon

import "syscall"

const (
	createNewProcessGroup = 0x00000200
	detachedProcess       = 0x00000008
)

func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: createNewProcessGroup | detachedProcess, HideWindow: true}
}

// Detached is detached for other packages (the CLI starting the daemon).
func Detached() *syscall.SysProcAttr { return detached() }

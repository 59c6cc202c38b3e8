//go:build darwin

package qemu

import "syscall"

// procAttr puts qemu in its own process group. macOS has no parent-death
// signal; see the package documentation.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

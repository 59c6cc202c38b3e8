//go:build linux

package qemu

import "syscall"

// procAttr puts qemu in its own process group and has the kernel SIGKILL it
// when the forking thread (held by the driver until qemu exits) dies, i.e.
// when the supervisor process dies for any reason.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

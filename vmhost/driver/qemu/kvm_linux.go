//go:build linux

package qemu

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

const (
	kvmGetAPIVersion = 0xAE00 // _IO(KVMIO, 0x00)
	kvmCreateVM      = 0xAE01 // _IO(KVMIO, 0x01)
)

// kvmDevice checks that /dev/kvm opens and can create a VM.
func kvmDevice() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: enable virtualization (VT-x/AMD-V) in the firmware and load kvm_intel or kvm_amd; a cloud VM needs nested virtualization", errNoKVMDevice)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("no permission to open /dev/kvm: add your user to the kvm group (sudo usermod -aG kvm $USER) and log in again")
	case err != nil:
		return fmt.Errorf("cannot open /dev/kvm: %v", err)
	}
	defer f.Close()
	v, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmGetAPIVersion, 0)
	if e != 0 {
		return fmt.Errorf("/dev/kvm: KVM_GET_API_VERSION: %v", e)
	}
	if v != 12 {
		return fmt.Errorf("/dev/kvm speaks KVM API %d, not 12", v)
	}
	fd, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), kvmCreateVM, 0)
	if e != 0 {
		return fmt.Errorf("/dev/kvm cannot create a VM (KVM_CREATE_VM: %v); another hypervisor may hold the CPU's virtualization extensions", e)
	}
	syscall.Close(int(fd))
	return nil
}

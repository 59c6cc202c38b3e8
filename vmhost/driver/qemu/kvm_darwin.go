//go:build darwin

package qemu

import "errors"

func kvmDevice() error { return errors.New("KVM does not exist on macOS (use hvf)") }

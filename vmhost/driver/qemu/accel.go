//go:build linux || darwin

package qemu

import (
	"errors"
	"fmt"
	"strings"
)

// EnvAccel overrides Options.Accel: auto, kvm, tcg or hvf.
const EnvAccel = "MOAT_ACCEL"

// Accelerator names.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
	AccelHVF  = "hvf"
)

// kvmProber checks whether KVM works. The real one opens /dev/kvm and boots
// a tiny firmware under qemu; tests use a fake.
type kvmProber interface {
	// Device returns nil when /dev/kvm exists, opens, and creates a VM;
	// otherwise an error that says what is wrong and how to fix it.
	Device() error
	// Boot runs qemu with -accel kvm on a probe firmware that switches to
	// long mode and exits through isa-debug-exit. It returns nil when it
	// did, else the reason (e.g. "probe timed out after 3s"). Only called
	// for an x86_64 guest on an x86_64 host.
	Boot(binary string) error
}

// hostInfo is what the accelerator choice depends on.
type hostInfo struct {
	GOOS      string // runtime.GOOS
	HostArch  string // runtime.GOARCH
	GuestArch string
	Binary    string
}

// accelChoice is the outcome of chooseAccel.
type accelChoice struct {
	Accel   string
	Warning string // one line for the user when auto fell back to TCG
}

// errNoKVMDevice is what Device returns when /dev/kvm does not exist.
var errNoKVMDevice = errors.New("/dev/kvm does not exist")

// chooseAccel decides the accelerator. req is the requested mode (empty
// means auto); source names where it came from, for error messages.
func chooseAccel(req, source string, h hostInfo, p kvmProber) (accelChoice, error) {
	req = strings.ToLower(strings.TrimSpace(req))
	if req == "" {
		req = AccelAuto
	}
	native := h.GuestArch == h.HostArch
	var hw string // the hardware accelerator of this OS
	switch h.GOOS {
	case "linux":
		hw = AccelKVM
	case "darwin":
		hw = AccelHVF
	}
	switch req {
	case AccelTCG:
		return accelChoice{Accel: AccelTCG}, nil
	case AccelKVM, AccelHVF:
		if req != hw {
			return accelChoice{}, fmt.Errorf("qemu: %s=%s is not available on %s (use auto, tcg or %s)", source, req, h.GOOS, hw)
		}
		if !native {
			return accelChoice{}, fmt.Errorf("qemu: %s=%s cannot run a %s guest on this %s host (use auto or tcg)", source, req, h.GuestArch, h.HostArch)
		}
		if req == AccelKVM {
			if err := p.Device(); err != nil {
				return accelChoice{}, fmt.Errorf("qemu: %s=kvm but %v (or use %s=tcg)", source, err, EnvAccel)
			}
		}
		return accelChoice{Accel: req}, nil
	case AccelAuto:
	default:
		return accelChoice{}, fmt.Errorf("qemu: %s=%q is not valid: use auto, kvm, tcg or hvf", source, req)
	}
	// auto
	if !native || hw == "" {
		return accelChoice{Accel: AccelTCG}, nil
	}
	if hw == AccelHVF {
		return accelChoice{Accel: AccelHVF}, nil
	}
	if err := p.Device(); err != nil {
		return accelChoice{Accel: AccelTCG, Warning: fmt.Sprintf("moat: KVM is not usable (%v); using TCG software emulation (slow)", err)}, nil
	}
	if h.GuestArch == "amd64" {
		if err := p.Boot(h.Binary); err != nil {
			return accelChoice{Accel: AccelTCG, Warning: fmt.Sprintf("moat: KVM at /dev/kvm does not work (%v); using TCG software emulation (slow)", err)}, nil
		}
	}
	return accelChoice{Accel: AccelKVM}, nil
}

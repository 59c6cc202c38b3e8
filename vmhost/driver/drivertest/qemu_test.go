//go:build linux

package drivertest_test

import (
	"testing"

	"github.com/moatsandbox/moat/vmhost/driver/drivertest"
	"github.com/moatsandbox/moat/vmhost/driver/qemu"
)

// TestQEMUConformance runs the driver conformance suite on QEMU with real VMs
// (TCG on machines whose KVM does not work).
func TestQEMUConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real VMs")
	}
	drivertest.Run(t, qemu.New())
}

//go:build linux

package qemu

import (
	"testing"

	"github.com/moatsandbox/moat/vmhost/driver/drivertest"
)

// TestConformance runs the driver conformance suite on real guest assets
// (skipped without them unless MOAT_REQUIRE_VM=1).
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("boots several VMs")
	}
	drivertest.Run(t, New())
}

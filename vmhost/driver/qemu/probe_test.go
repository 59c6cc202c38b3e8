//go:build linux || darwin

package qemu

import (
	"bytes"
	"os/exec"
	"testing"
	"time"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestProbeFirmwareLayout(t *testing.T) {
	img := probeFirmware()
	if len(img) != 64<<10 {
		t.Fatalf("size %d", len(img))
	}
	if !bytes.Equal(img[0xfff0:0xfff5], []byte{0xea, 0, 0, 0, 0xf0}) {
		t.Errorf("reset vector % x", img[0xfff0:0xfff5])
	}
	// The long-mode exit: mov $0x2a,%al; out %al,$0xf4 at lm64 (0x84).
	if !bytes.Equal(img[0x84:0x88], []byte{0xb0, 0x2a, 0xe6, 0xf4}) {
		t.Errorf("exit sequence % x", img[0x84:0x88])
	}
	// GDT descriptor at 0xb0 points at 0xF0090.
	if !bytes.Equal(img[0xb0:0xb6], []byte{0x1f, 0x00, 0x90, 0x00, 0x0f, 0x00}) {
		t.Errorf("gdt descriptor % x", img[0xb0:0xb6])
	}
}

// TestProbeUnderTCG proves the probe firmware reaches long mode and exits
// with the expected status, so a KVM verdict means something.
func TestProbeUnderTCG(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	start := time.Now()
	if err := runProbe(bin, AccelTCG, 10*time.Second); err != nil {
		t.Fatalf("probe under TCG: %v", err)
	}
	t.Logf("TCG probe passed in %v", time.Since(start))
	// Under KVM the verdict depends on the host; log it.
	if kvmDevice() == nil {
		start = time.Now()
		err := runProbe(bin, AccelKVM, ProbeTimeout)
		t.Logf("KVM probe: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
}

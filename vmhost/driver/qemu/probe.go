//go:build linux || darwin

package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProbeTimeout bounds one KVM probe boot. A working KVM finishes in well
// under a second (qemu's own start-up included).
const ProbeTimeout = 3 * time.Second

var errProbeTimeout = errors.New("probe timed out")

// probeExitStatus is qemu's exit status when the probe firmware writes 0x2a
// to isa-debug-exit: (0x2a << 1) | 1.
const probeExitStatus = 0x2a<<1 | 1

// probeCode is the probe firmware, loaded at 0xF0000 (the image is the
// 64 KiB BIOS, so its offset 0 is physical 0xF0000). Assembled with GNU as
// (--64) and `ld -Ttext=0 --oformat binary` from:
//
//	.code16
//	start16: cli; mov %cs,%ax; mov %ax,%ds
//	         lgdtl gdt_desc
//	         mov %cr0,%eax; or $1,%eax; mov %eax,%cr0    # protected mode
//	         ljmpl $0x08, $(0xF0000+pm32)
//	.code32
//	pm32:    mov $0x10,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss
//	         mov $0x1000,%edi; xor %eax,%eax; mov $3072,%ecx; rep stosl
//	         movl $0x2003,0x1000      # PML4[0] -> PDPT at 0x2000
//	         movl $0x3003,0x2000      # PDPT[0] -> PD at 0x3000
//	         movl $0x83,0x3000        # PD[0]: 2 MiB identity page
//	         mov %cr4,%eax; or $0x20,%eax; mov %eax,%cr4  # PAE
//	         mov $0x1000,%eax; mov %eax,%cr3
//	         mov $0xC0000080,%ecx; rdmsr; or $0x100,%eax; wrmsr  # EFER.LME
//	         mov %cr0,%eax; or $0x80000000,%eax; mov %eax,%cr0   # paging
//	         ljmp $0x18, $(0xF0000+lm64)
//	.code64
//	lm64:    movb $0x2a,%al; outb %al,$0xf4   # isa-debug-exit
//	1:       hlt; jmp 1b
//	.align 8
//	gdt:     .quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff, 0x00af9a000000ffff
//	gdt_desc: .word 31; .long 0xF0000+gdt
//
// The reset vector (offset 0xFFF0) holds `ljmp $0xf000,$0`.
//
// Why long mode and not just `out` at the reset vector: on the machines this
// was written on, nested KVM runs real-mode code fine (a reset-vector-only
// probe exits 85 at once) but hangs as soon as the guest sets CR0.PE — which
// is exactly where a Linux kernel hangs, right after "Probing EDD".
var probeCode = []byte{
	0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0x66, 0x0f, 0x01, 0x16, 0xb0, 0x00, 0x0f, 0x20, 0xc0, 0x66, 0x83,
	0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1d, 0x00, 0x0f, 0x00, 0x08, 0x00, 0x66, 0xb8, 0x10,
	0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbf, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0, 0xb9, 0x00,
	0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7,
	0x05, 0x00, 0x20, 0x00, 0x00, 0x03, 0x30, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83,
	0x00, 0x00, 0x00, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8, 0x00, 0x10, 0x00,
	0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00,
	0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x84, 0x00,
	0x0f, 0x00, 0x18, 0x00, 0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd, 0x8d, 0xb4, 0x00, 0x00, 0x90,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00,
	0x1f, 0x00, 0x90, 0x00, 0x0f, 0x00,
}

// probeFirmware returns the 64 KiB probe BIOS image.
func probeFirmware() []byte {
	img := bytes.Repeat([]byte{0xf4}, 64<<10) // hlt everywhere else
	copy(img, probeCode)
	copy(img[0xfff0:], []byte{0xea, 0x00, 0x00, 0x00, 0xf0}) // ljmp $0xf000,$0
	return img
}

// probeArgs is the probe's qemu command line for an accelerator.
func probeArgs(accel, bios string) []string {
	cpu := "max"
	if accel == AccelKVM {
		cpu = "host" // what real machines use, so a CPUID/MSR problem shows here too
	}
	return []string{
		"-accel", accel, "-machine", "q35", "-cpu", cpu,
		"-nodefaults", "-no-user-config", "-display", "none", "-m", "16M",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-bios", bios,
	}
}

// runProbe boots the probe firmware under accel and returns nil when qemu
// exits with probeExitStatus within timeout.
func runProbe(binary, accel string, timeout time.Duration) error {
	f, err := os.CreateTemp("", "moat-kvm-probe-*.bin")
	if err != nil {
		return fmt.Errorf("cannot write probe firmware: %v", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(probeFirmware()); err != nil {
		f.Close()
		return fmt.Errorf("cannot write probe firmware: %v", err)
	}
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, probeArgs(accel, f.Name())...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("%w after %s", errProbeTimeout, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == probeExitStatus {
		return nil
	}
	msg := firstLine(lastLines(stderr.String(), 1))
	if err == nil {
		return fmt.Errorf("probe exited with status 0, not %d", probeExitStatus)
	}
	if msg != "" {
		return fmt.Errorf("probe failed (%v): %s", err, msg)
	}
	return fmt.Errorf("probe failed: %v", err)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, strings.TrimRight(l, "\r"))
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// realProber is the kvmProber used outside tests: Device asks the kernel,
// Boot runs the probe once per host boot and qemu binary and caches the
// verdict in CacheFile.
type realProber struct {
	CacheFile string        // "" disables the cache
	Timeout   time.Duration // ProbeTimeout when zero
	run       func(binary string) error
}

func (p *realProber) Device() error { return kvmDevice() }

// probeCacheVersion is part of the cache key: bump it when the probe changes.
const probeCacheVersion = 2

type probeVerdict struct {
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

var probeMu sync.Mutex // serializes probes and cache updates in this process

// probeKey identifies a host boot and qemu binary; "" when unknown (then
// nothing is cached).
func probeKey(binary string) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	fi, err := os.Stat(binary)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("v%d|%s|%s|%d", probeCacheVersion, strings.TrimSpace(string(boot)), binary, fi.ModTime().UnixNano())
}

func (p *realProber) Boot(binary string) error {
	probeMu.Lock()
	defer probeMu.Unlock()
	key := ""
	if p.CacheFile != "" {
		key = probeKey(binary)
	}
	cache := map[string]probeVerdict{}
	if key != "" {
		if b, err := os.ReadFile(p.CacheFile); err == nil {
			_ = json.Unmarshal(b, &cache)
			if v, ok := cache[key]; ok {
				if v.OK {
					return nil
				}
				return errors.New(v.Reason)
			}
		}
	}
	run := p.run
	if run == nil {
		t := p.Timeout
		if t == 0 {
			t = ProbeTimeout
		}
		run = func(b string) error {
			err := runProbe(b, AccelKVM, t)
			if errors.Is(err, errProbeTimeout) {
				// A cold start (binary and libraries not yet in the page
				// cache) can be slow; a verdict cached for the whole boot
				// deserves a second try.
				err = runProbe(b, AccelKVM, t)
			}
			return err
		}
	}
	err := run(binary)
	if key != "" {
		v := probeVerdict{OK: err == nil, At: time.Now().UTC()}
		if err != nil {
			v.Reason = err.Error()
		}
		// Keep only this boot's entries.
		boot := strings.SplitN(key, "|", 3)[1]
		for k := range cache {
			if parts := strings.SplitN(k, "|", 3); len(parts) < 2 || parts[1] != boot {
				delete(cache, k)
			}
		}
		cache[key] = v
		if b, jerr := json.MarshalIndent(cache, "", "  "); jerr == nil {
			_ = os.MkdirAll(filepath.Dir(p.CacheFile), 0o755)
			tmp := p.CacheFile + ".tmp"
			if os.WriteFile(tmp, b, 0o644) == nil {
				_ = os.Rename(tmp, p.CacheFile)
			}
		}
	}
	return err
}

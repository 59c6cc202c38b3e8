//go:build linux || darwin

package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeExec(p string) error { return os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755) }

type fakeProber struct {
	device, boot error
	boots        int
}

func (f *fakeProber) Device() error            { return f.device }
func (f *fakeProber) Boot(binary string) error { f.boots++; return f.boot }

func TestChooseAccel(t *testing.T) {
	linux := hostInfo{GOOS: "linux", HostArch: "amd64", GuestArch: "amd64", Binary: "/usr/bin/qemu-system-x86_64"}
	linuxCross := hostInfo{GOOS: "linux", HostArch: "amd64", GuestArch: "arm64"}
	linuxArm := hostInfo{GOOS: "linux", HostArch: "arm64", GuestArch: "arm64"}
	mac := hostInfo{GOOS: "darwin", HostArch: "arm64", GuestArch: "arm64"}
	hang := errors.New("probe timed out after 3s")
	for _, tc := range []struct {
		name      string
		req       string
		host      hostInfo
		p         fakeProber
		want      string
		warn      string // substring; "" means no warning
		err       string // substring
		wantBoots int
	}{
		{name: "auto working kvm", host: linux, want: "kvm", wantBoots: 1},
		{name: "auto explicit", req: "AUTO", host: linux, want: "kvm", wantBoots: 1},
		{name: "auto hanging kvm", host: linux, p: fakeProber{boot: hang}, want: "tcg", wantBoots: 1,
			warn: "moat: KVM at /dev/kvm does not work (probe timed out after 3s); using TCG software emulation (slow)"},
		{name: "auto no device", host: linux, p: fakeProber{device: errNoKVMDevice}, want: "tcg", warn: "/dev/kvm does not exist"},
		{name: "auto cross arch", host: linuxCross, want: "tcg"},
		{name: "auto arm64 linux no boot probe", host: linuxArm, want: "kvm"},
		{name: "auto mac", host: mac, want: "hvf"},
		{name: "tcg", req: "tcg", host: linux, p: fakeProber{device: errNoKVMDevice}, want: "tcg"},
		{name: "kvm forced, no probe", req: "kvm", host: linux, p: fakeProber{boot: hang}, want: "kvm"},
		{name: "kvm forced, no device", req: "kvm", host: linux, p: fakeProber{device: errNoKVMDevice}, err: "MOAT_ACCEL=kvm but /dev/kvm does not exist"},
		{name: "kvm cross", req: "kvm", host: linuxCross, err: "cannot run a arm64 guest"},
		{name: "kvm on mac", req: "kvm", host: mac, err: "not available on darwin"},
		{name: "hvf on linux", req: "hvf", host: linux, err: "not available on linux"},
		{name: "hvf on mac", req: "hvf", host: mac, want: "hvf"},
		{name: "invalid", req: "fast", host: linux, err: `MOAT_ACCEL="fast" is not valid: use auto, kvm, tcg or hvf`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			got, err := chooseAccel(tc.req, "MOAT_ACCEL", tc.host, &p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Accel != tc.want {
				t.Errorf("accel = %q, want %q", got.Accel, tc.want)
			}
			if (tc.warn == "") != (got.Warning == "") || !strings.Contains(got.Warning, tc.warn) {
				t.Errorf("warning = %q, want %q", got.Warning, tc.warn)
			}
			if strings.Contains(got.Warning, "\n") {
				t.Errorf("warning is not one line: %q", got.Warning)
			}
			if p.boots != tc.wantBoots {
				t.Errorf("boot probes = %d, want %d", p.boots, tc.wantBoots)
			}
		})
	}
}

func TestProbeCache(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("no boot_id")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "qemu-system-x86_64")
	if err := writeExec(bin); err != nil {
		t.Fatal(err)
	}
	runs := 0
	verdict := errors.New("probe timed out after 3s")
	p := &realProber{CacheFile: filepath.Join(dir, "cache", "kvm-probe.json"), run: func(string) error { runs++; return verdict }}
	for i := 0; i < 3; i++ {
		if err := p.Boot(bin); err == nil || err.Error() != verdict.Error() {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if runs != 1 {
		t.Errorf("probe ran %d times, want 1 (cached)", runs)
	}
	// A fresh prober (another process) reads the same file.
	p2 := &realProber{CacheFile: p.CacheFile, run: func(string) error { runs++; return nil }}
	if err := p2.Boot(bin); err == nil {
		t.Error("cache not read by a second prober")
	}
	// A changed binary (new mtime) invalidates.
	if err := os.Chtimes(bin, time0.AddDate(1, 0, 0), time0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := p2.Boot(bin); err != nil || runs != 2 {
		t.Errorf("after binary change: %v, runs %d", err, runs)
	}
	if err := p2.Boot(bin); err != nil || runs != 2 {
		t.Errorf("ok verdict not cached: %v, runs %d", err, runs)
	}
	b, _ := os.ReadFile(p.CacheFile)
	if strings.Count(string(b), `"ok"`) != 2 {
		t.Errorf("cache file: %s", b)
	}
}

var time0 = mustTime("2020-01-01T00:00:00Z")

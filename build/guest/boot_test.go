package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/assets"
)

// TestSmokeBoot builds the assets with the smoke /init (build/guest/smoke)
// instead of the agent and boots them under QEMU with TCG: modules load in
// dependency order, mke2fs formats a disk, the modules disk and the base
// disk mount and run. It uses the default download cache (filled by
// `make guest`); it skips without qemu, or in -short mode, unless
// MOAT_REQUIRE_VM=1.
func TestSmokeBoot(t *testing.T) {
	require := os.Getenv("MOAT_REQUIRE_VM") == "1"
	if testing.Short() && !require {
		t.Skip("boots a VM")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the builder runs on Debian-like Linux")
	}
	src, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	qemus := map[string][]string{
		"amd64": {"qemu-system-x86_64", "-machine", "q35", "-cpu", "max", "-append", "console=ttyS0 panic=-1 quiet"},
		"arm64": {"qemu-system-aarch64", "-machine", "virt", "-cpu", "max,pauth-impdef=on", "-append", "console=ttyAMA0 panic=-1 quiet"},
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			q := qemus[arch]
			if _, err := exec.LookPath(q[0]); err != nil {
				if require && arch == runtime.GOARCH {
					t.Fatalf("%s not found (Debian package %s)", q[0], map[string]string{"amd64": "qemu-system-x86", "arm64": "qemu-system-arm"}[arch])
				}
				t.Skipf("%s not installed", q[0])
			}
			dir := t.TempDir()
			smoke := filepath.Join(dir, "smoke")
			build := exec.Command("go", "build", "-trimpath", "-o", smoke, "./build/guest/smoke")
			build.Dir = src
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("building smoke: %v\n%s", err, out)
			}
			out := filepath.Join(dir, "out")
			if err := run(config{arch: arch, out: out, src: src, agent: smoke, check: true}); err != nil {
				t.Fatal(err)
			}
			s, err := assets.Load(filepath.Join(out, arch))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(); err != nil {
				t.Fatal(err)
			}
			scratch := filepath.Join(dir, "scratch.img")
			if err := os.WriteFile(scratch, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Truncate(scratch, 256<<20)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			args := []string{"-nodefaults", "-display", "none", "-accel", "tcg", "-m", "512", "-smp", "2",
				"-no-reboot", "-serial", "stdio", "-kernel", s.KernelPath(), "-initrd", s.InitrdPath(),
				"-drive", "file=" + scratch + ",if=virtio,format=raw",
				"-drive", "file=" + s.ModulesPath() + ",if=virtio,format=raw,readonly=on",
				"-drive", "file=" + s.BasePath() + ",if=virtio,format=raw,readonly=on"}
			args = append(args, q[1:]...)
			cmd := exec.CommandContext(ctx, q[0], args...)
			var console bytes.Buffer
			cmd.Stdout, cmd.Stderr = &console, &console
			start := time.Now()
			err = cmd.Run()
			var lines []string
			for _, l := range strings.Split(console.String(), "\n") {
				if strings.Contains(l, "MOAT-SMOKE") {
					lines = append(lines, strings.TrimSpace(l))
				}
			}
			t.Logf("%s boot (%.1fs):\n%s", arch, time.Since(start).Seconds(), strings.Join(lines, "\n"))
			if !strings.Contains(console.String(), "MOAT-SMOKE: PASS") {
				t.Fatalf("no PASS (qemu: %v); console:\n%s", err, console.String())
			}
		})
	}
}

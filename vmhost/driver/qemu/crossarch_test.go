//go:build linux

package qemu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/vm"
)

// TestBootOtherArch boots the real guest of the other architecture (arm64
// on an amd64 host and vice versa) under TCG, runs uname -m and stops it.
// It is slow (full emulation of a foreign CPU), so it runs only with
// MOAT_TEST_CROSS_ARCH=1 and guest assets for that architecture.
func TestBootOtherArch(t *testing.T) {
	if os.Getenv("MOAT_TEST_CROSS_ARCH") != "1" {
		t.Skip("set MOAT_TEST_CROSS_ARCH=1 to boot the other architecture's guest under TCG")
	}
	arch, machine := "arm64", "aarch64"
	if runtime.GOARCH == "arm64" {
		arch, machine = "amd64", "x86_64"
	}
	if _, err := findBinary(arch); err != nil {
		t.Skip(err)
	}
	a, err := assets.Find(arch)
	if err != nil {
		t.Skip(err)
	}
	dir := shortDir(t, "mqx-")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ws := filepath.Join(dir, "ws ü")
	os.MkdirAll(ws, 0o777)
	os.Chmod(ws, 0o777)
	v, err := vm.Boot(ctx, New(), vm.Options{
		Name: "cross", Assets: a, DataDisk: filepath.Join(dir, "data.img"), DataSize: 256 << 20,
		CPUs: 2, MemoryMiB: 1024, Workspaces: []vm.Workspace{{HostPath: ws}}, Network: true,
		RunDir: filepath.Join(dir, "run"), ConsoleLog: filepath.Join(dir, "console.log"),
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	defer func() { v.Machine.Kill(); <-v.Machine.Done() }()
	t.Logf("%s guest ready in %v (guest: %.0f ms since kernel start), %+v", arch, v.BootTime.Round(time.Millisecond), v.Ready.Timings.ReadyMS, v.Machine.Info())
	var out bytes.Buffer
	st, err := v.Agent.Run(ctx, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", `uname -m && echo hi > "$1/f"`, "sh", ws}}, agentclient.Stdio{Stdout: &out})
	if err != nil || st.Code != 0 || strings.TrimSpace(strings.Split(out.String(), "\n")[0]) != machine {
		t.Fatalf("uname -m: %q %+v %v", out.String(), st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "f")); string(b) != "hi\n" {
		t.Errorf("share write not seen on the host: %q", b)
	}
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	if err := v.Stop(sctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := v.Machine.Err(); err != nil {
		t.Fatalf("Err after stop: %v", err)
	}
}

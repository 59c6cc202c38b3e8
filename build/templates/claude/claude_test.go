//go:build linux

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

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/driver/drivertest"
	"github.com/moatsandbox/moat/vmhost/driver/qemu"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/template"
	"github.com/moatsandbox/moat/vmhost/vm"
)

func TestKeyChangesWithInputs(t *testing.T) {
	if Key("amd64", "1.0.0") == Key("amd64", "1.0.1") || Key("amd64", "1.0.0") == Key("arm64", "1.0.0") {
		t.Fatal("cache key ignores version or arch")
	}
	if _, err := Version(); err != nil {
		t.Fatal(err)
	}
	if _, err := NPMPackage("riscv64"); err == nil {
		t.Fatal("riscv64 accepted")
	}
}

// TestClaudeTemplate builds the template when the cache lacks it (minutes:
// mmdebstrap plus a ~190 MB npm download), loads it into a store kept in the
// same cache (so the base disk is converted once), boots a sandbox from it
// and checks what `moat run claude` relies on.
func TestClaudeTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Debian image and boots a real VM")
	}
	require := os.Getenv(drivertest.RequireEnv) == "1"
	d := qemu.New()
	if err := d.Available(); err != nil {
		if require {
			t.Fatalf("%s=1 but QEMU is not usable: %v", drivertest.RequireEnv, err)
		}
		t.Skipf("QEMU not usable: %v", err)
	}
	a := drivertest.Assets(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		if require {
			t.Fatalf("%s=1 but mmdebstrap is missing (apt-get install mmdebstrap)", drivertest.RequireEnv)
		}
		t.Skip("mmdebstrap not installed")
	}
	version, _ := Version()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	dir, cached, err := Build(ctx, runtime.GOARCH, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image layout %s (cached=%v) in %v", dir, cached, time.Since(start).Round(100*time.Millisecond))
	cache, _ := CacheDir()
	s := template.Open(filepath.Join(cache, "store"))
	start = time.Now()
	tp, err := s.Load(ctx, dir, Name, template.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %s (disk %d MiB) in %v", tp.Digest[:19], tp.DiskSize>>20, time.Since(start).Round(100*time.Millisecond))
	if err := tp.CheckBinary("claude", protocol.DefaultUser); err != nil {
		t.Fatal(err)
	}

	tmp, err := os.MkdirTemp("", "moat-claude-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	tmp, _ = filepath.EvalSymlinks(tmp)
	ws := filepath.Join(tmp, "my-project")
	os.MkdirAll(ws, 0o755)
	os.Chown(ws, protocol.DefaultUID, protocol.DefaultUID)
	bctx, bcancel := context.WithTimeout(ctx, 4*time.Minute)
	defer bcancel()
	v, err := vm.Boot(bctx, d, vm.Options{
		Name: "claude-test", Assets: a, BaseDisk: tp.Disk,
		DataDisk: filepath.Join(tmp, "data.img"), DataSize: 4 << 30, MemoryMiB: 2048,
		Workspaces: []vm.Workspace{{HostPath: ws}},
		RunDir:     filepath.Join(tmp, "run"), ConsoleLog: filepath.Join(tmp, "console.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot: ready in %v", v.BootTime.Round(time.Millisecond))
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), time.Minute)
		defer c()
		v.Stop(sctx)
	}()
	run := func(user, script string) string {
		t.Helper()
		rctx, c := context.WithTimeout(ctx, 3*time.Minute)
		defer c()
		var out, errb bytes.Buffer
		t0 := time.Now()
		st, err := v.Agent.Run(rctx, protocol.ExecRequest{Argv: []string{"/bin/bash", "-c", script}, User: user, Dir: ws, Env: tp.Env},
			agentclient.Stdio{Stdout: &out, Stderr: &errb})
		if err != nil || st.Code != 0 {
			t.Fatalf("%q: %v exit %d: %s %s", script, err, st.Code, errb.String(), st.Error)
		}
		t.Logf("%q: %v", script, time.Since(t0).Round(time.Millisecond))
		return out.String()
	}
	if got := run("", "claude --version"); !strings.Contains(got, version) {
		t.Errorf("claude --version printed %q, want %s", got, version)
	}
	if got := run("", "id -un; pwd; command -v claude"); got != "agent\n"+ws+"\n/usr/local/bin/claude\n" {
		t.Errorf("user/cwd/path: %q", got)
	}
	if got := run("", "sudo -n true && sudo -n id -u"); got != "0\n" {
		t.Errorf("sudo: %q", got)
	}
	run("", `git init -q && echo hello > README && git add README && git -c user.name=t -c user.email=t@example.com commit -qm first && git log --oneline | wc -l`)
	if _, err := os.Stat(filepath.Join(ws, ".git", "HEAD")); err != nil {
		t.Errorf("git repository not on the host workspace: %v", err)
	}
	if got := run("", "node --version; python3 --version; rg --version | head -1; curl --version | head -1; ssh -V 2>&1"); strings.Count(got, "\n") < 5 {
		t.Errorf("tools: %q", got)
	}
}

//go:build linux

package qemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatsandbox/moat/build/guest/cpio"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
)

// The integration tests boot real VMs with a Debian kernel and a tiny static
// Go /init compiled here. They skip only when qemu is not installed.
//
// The kernel comes from, in order: $MOAT_TEST_KERNEL; the guest assets
// (vmhost/assets.Find); or the Debian package named by
// build/guest/kernel.version, fetched once with apt-get download into
// <user cache dir>/moat-test/kernel.

const tinyInitSrc = `package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	con, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	mode := os.Getenv("moattest")
	fmt.Fprintf(con, "MOAT-TINY-INIT mode=%s\n", mode)
	switch mode {
	case "panic":
		os.Exit(3) // PID 1 exits: the kernel panics
	case "hang":
		for {
			time.Sleep(time.Hour)
		}
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
`

var (
	fixtureOnce sync.Once
	fixtureErr  error
	fixKernel   string
	fixInitrd   string
)

func requireQEMU(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the integration fixtures are amd64 only")
	}
	if err := New().Available(); err != nil {
		t.Skipf("qemu not installed: %v", err)
	}
	fixtureOnce.Do(func() { fixKernel, fixInitrd, fixtureErr = buildFixtures() })
	if fixtureErr != nil {
		t.Fatalf("test fixtures: %v", fixtureErr)
	}
}

func testCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	d = filepath.Join(d, "moat-test")
	return d, os.MkdirAll(d, 0o755)
}

func buildFixtures() (kernel, initrd string, err error) {
	cache, err := testCacheDir()
	if err != nil {
		return "", "", err
	}
	if kernel, err = findKernel(cache); err != nil {
		return "", "", err
	}
	initrd, err = buildTinyInitrd(cache)
	return kernel, initrd, err
}

func findKernel(cache string) (string, error) {
	if k := os.Getenv("MOAT_TEST_KERNEL"); k != "" {
		return k, nil
	}
	if s, err := assets.Find("amd64"); err == nil {
		return s.KernelPath(), nil
	}
	version := "6.1.0-57"
	if b, err := os.ReadFile("../../../build/guest/kernel.version"); err == nil && strings.TrimSpace(string(b)) != "" {
		version = strings.TrimSpace(string(b))
	}
	release := version + "-amd64"
	dir := filepath.Join(cache, "kernel")
	k := filepath.Join(dir, "vmlinuz-"+release)
	if _, err := os.Stat(k); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	pkg := "linux-image-" + release
	dl := exec.Command("apt-get", "download", pkg)
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("no kernel: set MOAT_TEST_KERNEL, build the guest assets (%s), or make `apt-get download %s` work: %v\n%s", assets.BuildCommand, pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, dir)
	}
	x := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO "./boot/vmlinuz-$2" > "$3.tmp" && mv "$3.tmp" "$3"`, "sh", debs[0], release, k)
	if out, err := x.CombinedOutput(); err != nil {
		return "", fmt.Errorf("extracting the kernel from %s: %v\n%s", debs[0], err, out)
	}
	for _, d := range debs {
		os.Remove(d)
	}
	return k, nil
}

func buildTinyInitrd(cache string) (string, error) {
	src, err := os.MkdirTemp("", "moat-tinyinit-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module tinyinit\n\ngo 1.21\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte(tinyInitSrc), 0o644)
	bin := filepath.Join(src, "init")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the tiny init: %v\n%s", err, out)
	}
	initBytes, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	cw := cpio.NewWriter(&buf)
	if err := cw.WriteHeader(cpio.Header{Name: "dev", Mode: cpio.TypeDir | 0o755}); err != nil {
		return "", err
	}
	if err := cw.File("init", 0o755, initBytes); err != nil {
		return "", err
	}
	if err := cw.Close(); err != nil {
		return "", err
	}
	out := filepath.Join(cache, "tiny-initrd.cpio")
	if err := os.WriteFile(out+".tmp", buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

// shortDir is a temp dir with a short path (unix sockets).
func shortDir(t *testing.T, pattern string) string {
	d, err := os.MkdirTemp("/tmp", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func tinySpec(t *testing.T, mode string) driver.Spec {
	dir := shortDir(t, "mq-")
	return driver.Spec{
		Name:       "it-" + mode,
		CPUs:       1,
		MemoryMiB:  256,
		Kernel:     fixKernel,
		Initrd:     fixInitrd,
		KernelArgs: []string{"moattest=" + mode},
		RunDir:     filepath.Join(dir, "run"),
		ConsoleLog: filepath.Join(dir, "console.log"),
	}
}

func startTiny(t *testing.T, spec driver.Spec) driver.Machine {
	t.Helper()
	var warnings []string
	d := NewWithOptions(Options{Logf: func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	m, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { m.Kill(); <-m.Done() })
	t.Logf("qemu running after %v: %+v (warnings: %q)", time.Since(start).Round(time.Millisecond), m.Info(), warnings)
	if st := m.Info().State; st != driver.StateRunning {
		t.Errorf("state after Start = %q", st)
	}
	return m
}

func waitDone(t *testing.T, m driver.Machine, d time.Duration) {
	t.Helper()
	select {
	case <-m.Done():
	case <-time.After(d):
		t.Fatalf("machine still running after %v", d)
	}
}

// TestBootPowerOff boots the tiny init, which writes a line and powers off.
// The spec carries a disk, a read-only and a writable share and a console
// log whose paths hold spaces, commas and non-ASCII, so qemu must parse the
// escaped option values; query-block proves the disk path arrived intact.
func TestBootPowerOff(t *testing.T) {
	requireQEMU(t)
	t.Parallel()
	spec := tinySpec(t, "poweroff")
	odd := filepath.Join(filepath.Dir(spec.RunDir), "odd, dir ü")
	os.MkdirAll(filepath.Join(odd, "ro share"), 0o755)
	os.MkdirAll(filepath.Join(odd, "rw,share"), 0o755)
	disk := filepath.Join(odd, "data, 1.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.ConsoleLog = filepath.Join(odd, "console, ü.log")
	spec.Disks = []driver.Disk{{ID: "data", Path: disk}}
	spec.Shares = []driver.Share{{Tag: "ws0", HostPath: filepath.Join(odd, "rw,share")}, {Tag: "ro0", HostPath: filepath.Join(odd, "ro share"), ReadOnly: true}}
	spec.Network = true

	start := time.Now()
	m := startTiny(t, spec)
	qm := m.(*machine)
	raw, err := qm.qmp.Execute(context.Background(), "query-block", nil)
	if err != nil {
		t.Fatalf("query-block: %v", err)
	}
	var blocks []struct {
		Device   string `json:"device"`
		Inserted struct {
			File string `json:"file"`
			RO   bool   `json:"ro"`
		} `json:"inserted"`
	}
	json.Unmarshal(raw, &blocks)
	if len(blocks) != 1 || blocks[0].Inserted.File != disk || blocks[0].Inserted.RO {
		t.Errorf("query-block = %s", raw)
	}
	if l := m.Layout(); l.Disks["data"].Serial != "data" || len(l.Mounts) != 2 || l.Network == nil {
		t.Errorf("layout %+v", l)
	}
	waitDone(t, m, 90*time.Second)
	t.Logf("boot to power-off: %v", time.Since(start).Round(time.Millisecond))
	if err := m.Err(); err != nil {
		t.Fatalf("clean power-off reported as %v", err)
	}
	if st := m.Info().State; st != driver.StateStopped {
		t.Errorf("state = %q", st)
	}
	con := driver.ConsoleTail(spec.ConsoleLog, 20)
	if !strings.Contains(con, "MOAT-TINY-INIT mode=poweroff") {
		t.Errorf("console lacks the init's line:\n%s", con)
	}
	t.Logf("console tail:\n%s", con)
}

// TestGuestPanicIsAnError: PID 1 exits, the kernel panics and (panic=-1,
// -no-reboot) qemu exits 0; the driver must still report a failure.
func TestGuestPanicIsAnError(t *testing.T) {
	requireQEMU(t)
	t.Parallel()
	spec := tinySpec(t, "panic")
	m := startTiny(t, spec)
	waitDone(t, m, 90*time.Second)
	err := m.Err()
	if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "Kernel panic - not syncing: Attempted to kill init") {
		t.Fatalf("Err = %v", err)
	}
	t.Logf("reported: %v", err)
}

func TestKillIsReported(t *testing.T) {
	requireQEMU(t)
	m := startTiny(t, tinySpec(t, "hang"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.DialAgent(ctx)
	if err != nil {
		t.Fatalf("DialAgent: %v", err)
	}
	c.Close()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, m, 10*time.Second)
	if err := m.Err(); err == nil || !strings.Contains(err.Error(), "qemu was killed (signal 9") {
		t.Fatalf("Err = %v", err)
	}
	if st := m.Info().State; st != driver.StateStopped {
		t.Errorf("state = %q", st)
	}
	if _, err := m.DialAgent(ctx); err == nil {
		t.Error("DialAgent after kill succeeded")
	}
	if err := m.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
}

// TestShutdownFallsBackToQuit: the tiny init ignores the ACPI power button,
// so Shutdown must stop qemu with quit once ctx ends and say so.
func TestShutdownFallsBackToQuit(t *testing.T) {
	requireQEMU(t)
	m := startTiny(t, tinySpec(t, "hang"))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not power off") || !strings.Contains(err.Error(), "QMP quit") {
		t.Fatalf("Shutdown = %v", err)
	}
	waitDone(t, m, time.Second)
	if m.Err() != nil {
		t.Errorf("Err after a requested stop = %v", m.Err())
	}
	if st := m.Info().State; st != driver.StateStopped {
		t.Errorf("state = %q", st)
	}
	t.Logf("Shutdown took %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err := m.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a stopped machine: %v", err)
	}
}

// TestBootFailureNamesTheCause: qemu refuses a kernel that is not one; the
// error must carry qemu's own message.
func TestBootFailureNamesTheCause(t *testing.T) {
	requireQEMU(t)
	spec := tinySpec(t, "poweroff")
	bad := filepath.Join(filepath.Dir(spec.RunDir), "not-a-kernel")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	spec.Kernel = bad
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := NewWithOptions(Options{Accel: AccelTCG}).Start(ctx, spec)
	if err == nil {
		t.Fatal("Start succeeded with a garbage kernel")
	}
	msg := err.Error()
	if !strings.Contains(msg, "qemu: start-up failed: qemu exited with status 1") || !strings.Contains(msg, "qemu said:\n  qemu: linux kernel too old") || !strings.Contains(msg, "console") {
		t.Errorf("error lacks detail: %v", err)
	}
	t.Logf("reported: %v", err)
}

// TestVMDiesWithSupervisor: a process that started a VM is SIGKILLed; its
// qemu must die too (Pdeathsig).
func TestVMDiesWithSupervisor(t *testing.T) {
	if os.Getenv("MOAT_QEMU_HELPER") != "" {
		return
	}
	requireQEMU(t)
	spec := tinySpec(t, "hang")
	b, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSupervisor$", "-test.v")
	cmd.Env = append(os.Environ(), "MOAT_QEMU_HELPER="+string(b))
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	pid := 0
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "QEMU-PID "); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	deadline.Stop()
	if pid == 0 {
		t.Fatal("helper did not report a qemu pid")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if !alive(pid) {
		t.Fatalf("qemu %d is not running before the supervisor is killed", pid)
	}
	killed := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for i := 0; i < 100; i++ {
		if !alive(pid) {
			t.Logf("qemu %d died %v after its supervisor was SIGKILLed", pid, time.Since(killed).Round(time.Millisecond))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("qemu %d outlived its supervisor", pid)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func TestHelperSupervisor(t *testing.T) {
	env := os.Getenv("MOAT_QEMU_HELPER")
	if env == "" {
		t.Skip("helper for TestVMDiesWithSupervisor")
	}
	var spec driver.Spec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		t.Fatal(err)
	}
	// Start from a goroutine that exits at once: Pdeathsig must still hold.
	ch := make(chan driver.Machine)
	go func() {
		m, err := New().Start(context.Background(), spec)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		ch <- m
	}()
	m := <-ch
	time.Sleep(500 * time.Millisecond) // the goroutine that called Start is gone by now
	select {
	case <-m.Done():
		fmt.Println("ERROR qemu stopped when the goroutine that started it ended:", m.Err())
		os.Exit(1)
	default:
	}
	fmt.Printf("QEMU-PID %d\n", m.Info().PID)
	time.Sleep(time.Minute)
}

// TestOutsideSIGTERMIsAnError: qemu exits 0 on SIGTERM; that is not a clean
// guest power-off.
func TestOutsideSIGTERMIsAnError(t *testing.T) {
	requireQEMU(t)
	m := startTiny(t, tinySpec(t, "hang"))
	syscall.Kill(m.Info().PID, syscall.SIGTERM)
	waitDone(t, m, 10*time.Second)
	if err := m.Err(); err == nil || !strings.Contains(err.Error(), "signal from outside") {
		t.Fatalf("Err = %v", err)
	}
}

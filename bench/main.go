// Command bench measures sandbox boot-to-ready and exec round-trip times and
// reports each against a baseline measured in the same run, because these
// machines are noisy and only ratios compare across runs:
//
//   - boot: vm.Boot until the guest agent is ready (the real sandbox path:
//     modules, overlay root, 9p workspace, network) against the same kernel
//     booting a trivial static init that powers off at once;
//   - exec: commands through the guest protocol against a bare `true`.
//
// Usage: go run ./bench -runs 50 -out docs/benchmarks.md
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/moatsandbox/moat/build/guest/cpio"
	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	_ "github.com/moatsandbox/moat/vmhost/driver/qemu"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/vm"
)

func main() {
	runs := flag.Int("runs", 50, "samples per measurement (boot and exec)")
	execRuns := flag.Int("exec-runs", 200, "samples per exec measurement")
	out := flag.String("out", "", "append a Markdown report to this file")
	flag.Parse()
	if err := run(*runs, *execRuns, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type series struct {
	name    string
	samples []time.Duration
}

func (s *series) add(d time.Duration) { s.samples = append(s.samples, d) }

func (s *series) pct(p float64) time.Duration {
	if len(s.samples) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), s.samples...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	i := int(p*float64(len(c)-1) + 0.5)
	return c[i]
}

func run(runs, execRuns int, out string) error {
	d, err := driver.Default()
	if err != nil {
		return err
	}
	a, err := assets.Find("")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "moat-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(ws, 0o755)

	trivial, err := trivialInitramfs(dir, a.Arch)
	if err != nil {
		return fmt.Errorf("build trivial init: %w", err)
	}

	base := &series{name: "baseline: same kernel, trivial init that powers off (start → exit)"}
	boot := &series{name: "moat: boot to agent ready (start → ready)"}
	stop := &series{name: "moat: graceful stop (shutdown → exit)"}
	var first time.Duration
	var timings protocol.Timings
	ctx := context.Background()
	for i := 0; i < runs; i++ {
		// Interleave baseline and real boots so drift hits both alike.
		t0 := time.Now()
		m, err := d.Start(ctx, driver.Spec{
			Name: "bench-baseline", Arch: a.Arch, CPUs: 2, MemoryMiB: 1024,
			Kernel: a.KernelPath(), Initrd: trivial,
			RunDir: filepath.Join(dir, "brun"), ConsoleLog: filepath.Join(dir, "baseline.log"),
		})
		if err != nil {
			return fmt.Errorf("baseline boot: %w", err)
		}
		select {
		case <-m.Done():
		case <-time.After(2 * time.Minute):
			m.Kill()
			return fmt.Errorf("baseline VM did not power off; console:\n%s", driver.ConsoleTail(filepath.Join(dir, "baseline.log"), 20))
		}
		base.add(time.Since(t0))

		v, err := vm.Boot(ctx, d, vm.Options{
			Name: "bench", Assets: a, DataDisk: filepath.Join(dir, "data.img"), DataSize: 1 << 30,
			CPUs: 2, MemoryMiB: 1024, Workspaces: []vm.Workspace{{HostPath: ws}}, Network: true,
			RunDir: filepath.Join(dir, "run"), ConsoleLog: filepath.Join(dir, "console.log"),
		})
		if err != nil {
			return err
		}
		if i == 0 {
			first = v.BootTime // includes formatting the writable disk
		} else {
			boot.add(v.BootTime)
		}
		timings = v.Ready.Timings
		if i == runs-1 {
			if err := benchExec(v, execRuns, out, base, boot, stop, first, timings, d); err != nil {
				return err
			}
		}
		t1 := time.Now()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		v.Stop(sctx)
		cancel()
		stop.add(time.Since(t1))
		fmt.Fprintf(os.Stderr, "run %d/%d: baseline %v, boot %v\n", i+1, runs, base.samples[len(base.samples)-1].Round(time.Millisecond), v.BootTime.Round(time.Millisecond))
	}
	return nil
}

func benchExec(v *vm.VM, n int, out string, base, boot, stop *series, first time.Duration, tm protocol.Timings, d driver.Driver) error {
	type job struct {
		s   *series
		req protocol.ExecRequest
		in  func() io.Reader
	}
	jobs := []job{
		{&series{name: "baseline: `true` through the protocol (pipes)"}, protocol.ExecRequest{Argv: []string{"true"}}, nil},
		{&series{name: "`echo ok` (pipes, output read)"}, protocol.ExecRequest{Argv: []string{"echo", "ok"}}, nil},
		{&series{name: "`cat` with 1 KiB of stdin"}, protocol.ExecRequest{Argv: []string{"cat"}}, func() io.Reader { return bytes.NewReader(make([]byte, 1024)) }},
		{&series{name: "`echo ok` on a terminal (-it)"}, protocol.ExecRequest{Argv: []string{"echo", "ok"}, TTY: true, Size: protocol.WindowSize{Rows: 24, Cols: 80}}, nil},
		{&series{name: "`sh -c true` (shell start)"}, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", "true"}}, nil},
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		for _, j := range jobs {
			var stdin io.Reader
			if j.in != nil {
				stdin = j.in()
			}
			t0 := time.Now()
			st, err := v.Agent.Run(ctx, j.req, agentclient.Stdio{Stdin: stdin, Stdout: io.Discard})
			if err != nil || st.Code != 0 {
				return fmt.Errorf("exec %v: %v %+v", j.req.Argv, err, st)
			}
			j.s.add(time.Since(t0))
		}
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "\n## Run of %s on %s (%s/%s, %d CPUs), driver %s, accel %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), d.Name(), v.Machine.Info().Accel)
	fmt.Fprintf(&b, "Command: `go run ./bench -runs %d -exec-runs %d`. Boots: %d interleaved pairs (the first moat boot, which formats the writable disk, is reported apart: %v).\n\n", len(base.samples), n, len(base.samples), first.Round(time.Millisecond))
	row := func(s *series, ref *series) {
		ratio := "1.00× (baseline)"
		if ref != nil && ref != s {
			ratio = fmt.Sprintf("%.2f× p50, %.2f× p95", float64(s.pct(.5))/float64(ref.pct(.5)), float64(s.pct(.95))/float64(ref.pct(.95)))
		}
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %s |\n", s.name, len(s.samples), s.pct(.5).Round(time.Millisecond/10), s.pct(.95).Round(time.Millisecond/10), ratio)
	}
	fmt.Fprintf(&b, "| measurement | n | p50 | p95 | vs baseline |\n|---|---|---|---|---|\n")
	row(base, base)
	row(boot, base)
	row(stop, base)
	for _, j := range jobs {
		row(j.s, jobs[0].s)
	}
	fmt.Fprintf(&b, "\nGuest-side milestones of the last boot (ms since the kernel started): init %.0f, modules %.0f, channel %.0f, hello %.0f, root %.0f, mounts %.0f, network %.0f, ready %.0f.\n",
		tm.InitStartMS, tm.ModulesLoadedMS, tm.ChannelOpenMS, tm.HelloMS, tm.RootReadyMS, tm.MountsReadyMS, tm.NetworkReadyMS, tm.ReadyMS)
	fmt.Print(b.String())
	if out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(b.String())
		return err
	}
	return nil
}

// trivialInit powers the VM off as soon as the kernel runs it.
const trivialInit = `package main

import "syscall"

func main() { syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF) }
`

func trivialInitramfs(dir, arch string) (string, error) {
	src := filepath.Join(dir, "trivial")
	os.MkdirAll(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(trivialInit), 0o644); err != nil {
		return "", err
	}
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module trivial\n\ngo 1.21\n"), 0o644)
	bin := filepath.Join(dir, "trivial-init")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := cpio.NewWriter(zw)
	if err := w.File("init", 0o755, body); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	zw.Close()
	p := filepath.Join(dir, "trivial.cpio.gz")
	return p, os.WriteFile(p, buf.Bytes(), 0o644)
}

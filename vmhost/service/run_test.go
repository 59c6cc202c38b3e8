//go:build !windows

package service

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/state"
)

func TestParseLevel(t *testing.T) {
	for in, ok := range map[string]bool{"": true, "debug": true, "INFO": true, "warn": true, "error": true, "trace": false} {
		if _, err := ParseLevel(in); (err == nil) != ok {
			t.Errorf("ParseLevel(%q): %v", in, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildOut  []byte
	// realMoat is true when the binary is moat itself (its `vmhost`
	// command runs RunDaemon); binVersion is what its daemon reports.
	realMoat   bool
	binVersion = "servicetest"
)

// testBinary builds the daemon binary with `go build -o`: moat itself
// when its `vmhost` command is wired to RunDaemon (it has --log-level),
// else internal/testmoat, which runs RunDaemon for `vmhost` and the
// supervisor for `_supervise`, as moat does.
func testBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a daemon process; skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-service-test")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "moat")
		if out, err := exec.Command("go", "build", "-o", buildBin, "../..").CombinedOutput(); err == nil {
			help, _ := exec.Command(buildBin, "vmhost", "--help").CombinedOutput()
			if strings.Contains(string(help), "--log-level") {
				realMoat, binVersion = true, "dev"
				return
			}
		} else {
			buildOut = out
		}
		buildOut, buildErr = exec.Command("go", "build", "-o", buildBin, "./internal/testmoat").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	t.Logf("daemon binary: %s (moat itself: %v)", buildBin, realMoat)
	return buildBin
}

type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// daemonEnv is the environment of a test daemon: MOAT_HOME=home, and no
// service manager unless extra says so.
func daemonEnv(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvManager+"=") && !strings.HasPrefix(kv, state.EnvHome+"=") {
			env = append(env, kv)
		}
	}
	return append(append(env, state.EnvHome+"="+home), extra...)
}

func startDaemonProc(t *testing.T, bin, home string, extra ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, "vmhost", "--log-level", "debug")
	cmd.Env = daemonEnv(home, extra...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *daemonProc) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *daemonProc) sigterm() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	if !p.exited(20 * time.Second) {
		p.t.Fatalf("daemon pid %d did not exit within 20 s of SIGTERM; output:\n%s", p.cmd.Process.Pid, p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("daemon exit code %d after SIGTERM; output:\n%s", code, p.out)
	}
}

// waitServing waits until the daemon with pid answers on l's socket.
func waitServing(t *testing.T, l *state.Layout, pid int, d time.Duration) *api.Client {
	t.Helper()
	c := api.NewClient(l.DaemonSocket())
	deadline := time.Now().Add(d)
	for {
		v, err := c.Version(context.Background())
		if err == nil && v.PID == pid {
			return c
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(l.DaemonLog())
			t.Fatalf("no daemon pid %d on %s after %v (last: %+v, %v); log:\n%s", pid, l.DaemonSocket(), d, v, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readLog(t *testing.T, l *state.Layout) string {
	b, _ := os.ReadFile(l.DaemonLog())
	return string(b)
}

// TestInteractiveDaemon runs the daemon as a process in the service
// library's interactive mode (no service manager: service.Interactive() is
// true), checks that it serves the API, logs to the rotating file at the
// requested level, refuses a second daemon, and exits cleanly on SIGTERM
// and on /v1/shutdown.
func TestInteractiveDaemon(t *testing.T) {
	bin := testBinary(t)
	home := t.TempDir()
	l, _ := state.New(home, "")
	t.Cleanup(func() { os.RemoveAll(l.Runtime) })

	d := startDaemonProc(t, bin, home)
	c := waitServing(t, l, d.cmd.Process.Pid, 10*time.Second)
	v, err := c.Version(context.Background())
	if err != nil || v.Version != binVersion || v.API != api.Version {
		t.Fatalf("version: %+v %v", v, err)
	}
	if ls, err := c.List(context.Background()); err != nil || len(ls) != 0 {
		t.Fatalf("list: %v %v", ls, err)
	}
	log := readLog(t, l)
	for _, want := range []string{"level=DEBUG msg=starting", "manager=\"\"", "interactive=true", "serving on " + l.DaemonSocket()} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if fi, err := os.Stat(l.DaemonLog()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file: %v %v", fi, err)
	}

	// A second daemon in a terminal refuses to start.
	second := exec.Command(bin, "vmhost")
	second.Env = daemonEnv(home)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another moat daemon is already serving") {
		t.Errorf("second daemon: %v\n%s", err, out)
	}

	// Under a service manager it waits for the first to exit, then serves.
	waiter := startDaemonProc(t, bin, home, EnvManager+"=systemd")
	if waiter.exited(1500 * time.Millisecond) {
		t.Fatalf("a service daemon beside a running one exited: %s", waiter.out)
	}
	if v, _ := c.Version(context.Background()); v == nil || v.PID != d.cmd.Process.Pid {
		t.Fatalf("the waiting daemon took over early: %+v", v)
	}

	d.sigterm()
	log = readLog(t, l)
	for _, want := range []string{"signal received; stopping the daemon (sandboxes keep running)", "signal=terminated", "daemon exited"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	c = waitServing(t, l, waiter.cmd.Process.Pid, 10*time.Second)
	if !strings.Contains(readLog(t, l), "another moat daemon is serving; waiting for it to exit") {
		t.Errorf("the waiting daemon did not say so:\n%s", readLog(t, l))
	}

	// /v1/shutdown: the daemon ends by itself and the process exits 0.
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !waiter.exited(10 * time.Second) {
		t.Fatalf("daemon did not exit after /v1/shutdown:\n%s", waiter.out)
	}
	if code := waiter.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after /v1/shutdown:\n%s", code, waiter.out)
	}
	if _, err := os.Stat(l.DaemonSocket()); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if state.Held(l.DaemonLock()) {
		t.Error("daemon lock still held")
	}
}

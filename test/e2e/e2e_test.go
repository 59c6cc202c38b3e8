//go:build linux

// Package e2e runs the real moat binary against real VMs under QEMU: the
// whole seed flow of a sandbox, daemon restarts, and bad input.
//
// It needs the guest assets (MOAT_GUEST_DIR, or wherever vmhost/assets
// finds them; build them with `go run ./build/guest -arch amd64 -out DIR`)
// and qemu-system-x86_64. Without them it skips, saying what is missing.
package e2e

import (
	"bytes"
	"fmt"
	"io"
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

	"github.com/creack/pty"

	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/state"
)

type harness struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

func qemuBinary() string {
	if runtime.GOARCH == "arm64" {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

func setup(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	skip := t.Skipf
	if os.Getenv("MOAT_REQUIRE_VM") == "1" {
		skip = t.Fatalf // CI: never pass by not running
	}
	if _, err := exec.LookPath(qemuBinary()); err != nil {
		skip("e2e: %s is not installed (apt-get install qemu-system-x86)", qemuBinary())
	}
	a, err := assets.Find(runtime.GOARCH)
	if err != nil {
		skip("e2e: guest assets are missing: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "moat")
	build := exec.Command("go", "build", "-o", bin, "../..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build moat: %v\n%s", err, out)
	}
	home := t.TempDir()
	h := &harness{t: t, bin: bin, home: home}
	h.env = append(os.Environ(), "MOAT_HOME="+home, "MOAT_GUEST_DIR="+filepath.Dir(a.Dir), "TERM=xterm",
		"ANTHROPIC_API_KEY=sk-e2e-not-a-real-key") // must never reach the daemon
	t.Cleanup(func() {
		h.moat("reset", "-f")
		if l, err := state.New(home, ""); err == nil {
			defer os.RemoveAll(l.Runtime)
		}
		if b, err := os.ReadFile(filepath.Join(home, "vmhost.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		if t.Failed() {
			h.dumpLogs()
		}
	})
	return h
}

func (h *harness) dumpLogs() {
	filepath.Walk(h.home, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".log") {
			b, _ := os.ReadFile(p)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			h.t.Logf("--- %s\n%s", p, b)
		}
		return nil
	})
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *harness) moat(args ...string) result {
	return h.moatIn("", args...)
}

func (h *harness) moatIn(stdin string, args ...string) result {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = h.env
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("moat %v: %v", args, err)
	}
	return result{code, o.String(), e.String()}
}

// ok runs moat and fails the test unless it exits 0.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.moat(args...)
	if r.code != 0 {
		h.t.Fatalf("moat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs moat and checks a clean failure: non-zero exit, one line on
// stderr starting "moat: " and containing want, no stack trace.
func (h *harness) fails(want string, args ...string) {
	h.t.Helper()
	r := h.moat(args...)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	switch {
	case r.code == 0:
		h.t.Errorf("moat %s: exit 0, want failure", strings.Join(args, " "))
	case len(lines) != 1 || !strings.HasPrefix(lines[0], "moat: "):
		h.t.Errorf("moat %s: stderr is not one `moat: ` line:\n%s", strings.Join(args, " "), r.stderr)
	case !strings.Contains(r.stderr, want):
		h.t.Errorf("moat %s: stderr %q lacks %q", strings.Join(args, " "), r.stderr, want)
	case strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic"):
		h.t.Errorf("moat %s: stack trace:\n%s", strings.Join(args, " "), r.stderr)
	}
}

// status returns a sandbox's STATUS column from `moat ls`.
func (h *harness) status(name string) string {
	h.t.Helper()
	for _, l := range strings.Split(h.ok("ls"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == name {
			return f[2]
		}
	}
	return ""
}

// term is a moat process on a pty.
type term struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{} // the process exited
	read chan struct{} // all its output was read
	code int
}

func (h *harness) startPTY(args ...string) *term {
	h.t.Helper()
	return h.startPTYCmd(exec.Command(h.bin, args...))
}

func (h *harness) startPTYCmd(cmd *exec.Cmd) *term {
	h.t.Helper()
	cmd.Env = h.env
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		h.t.Fatal(err)
	}
	tm := &term{t: h.t, cmd: cmd, pty: f, done: make(chan struct{}), read: make(chan struct{})}
	go func() {
		defer close(tm.read)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		tm.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			tm.code = ee.ExitCode()
		}
		close(tm.done)
	}()
	h.t.Cleanup(func() { cmd.Process.Kill(); f.Close() })
	return tm
}

func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.String()
}

// waitFor waits until the output after offset contains s; it returns the
// offset just past it.
func (tm *term) waitFor(s string, from int, d time.Duration) int {
	tm.t.Helper()
	deadline := time.Now().Add(d)
	for {
		o := tm.output()
		if from < len(o) {
			if i := strings.Index(o[from:], s); i >= 0 {
				return from + i + len(s)
			}
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %q; output so far:\n%s", s, o)
		}
		select {
		case <-tm.done:
			if !strings.Contains(tm.output()[from:], s) {
				tm.t.Fatalf("moat exited (code %d) before printing %q; output:\n%s", tm.code, s, tm.output())
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (tm *term) send(s string) {
	if _, err := io.WriteString(tm.pty, s); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *term) wait(d time.Duration) int {
	tm.t.Helper()
	select {
	case <-tm.done:
		select {
		case <-tm.read: // the rest of the output
		case <-time.After(5 * time.Second):
		}
		return tm.code
	case <-time.After(d):
		tm.t.Fatalf("moat did not exit; output:\n%s", tm.output())
		return -1
	}
}

func TestSeedFlow(t *testing.T) {
	h := setup(t)
	ws := filepath.Join(t.TempDir(), "my.project")
	extra := filepath.Join(t.TempDir(), "ref")
	for _, d := range []string{ws, extra} {
		os.MkdirAll(d, 0o777)
		os.Chmod(d, 0o777) // the guest user (uid 1000) may write; only :ro may stop it
	}
	os.WriteFile(filepath.Join(extra, "readme"), []byte("reference\n"), 0o644)
	ws, _ = filepath.EvalSymlinks(ws)
	extra, _ = filepath.EvalSymlinks(extra)
	name := "shell-my-project"
	start := time.Now()

	// 1. moat run on a pty: the agent (a login shell) runs in the workspace.
	tm := h.startPTY("run", "--cpus", "1", "--memory", "1g", "shell", ws, extra+":ro")
	off := 0
	tm.send("echo MARK$((40+2)); pwd\r")
	off = tm.waitFor("MARK42", off, 3*time.Minute)
	off = tm.waitFor(ws, off, 10*time.Second)
	t.Logf("first boot and attach: %v", time.Since(start).Round(time.Millisecond))

	// The workspace is shared read-write at the same path, the extra one read-only.
	tm.send("echo from-guest > hello.txt; cat " + extra + "/readme; touch " + extra + "/x 2>/dev/null || echo RO-REFUSED\r")
	off = tm.waitFor("reference", off, 10*time.Second)
	off = tm.waitFor("RO-REFUSED", off, 10*time.Second)
	if b, err := os.ReadFile(filepath.Join(ws, "hello.txt")); err != nil || string(b) != "from-guest\n" {
		t.Fatalf("file written in the guest: %q %v", b, err)
	}
	tm.send("echo CPUS=$(grep -c ^processor /proc/cpuinfo)\r")
	off = tm.waitFor("CPUS=1", off, 10*time.Second)

	// 2. ls shows it running while attached.
	if st := h.status(name); st != "running" {
		t.Fatalf("ls while attached: %q", st)
	}

	// Window size at start and on resize.
	tm.send("stty size\r")
	off = tm.waitFor("24 80", off, 10*time.Second)
	pty.Setsize(tm.pty, &pty.Winsize{Rows: 30, Cols: 100})
	time.Sleep(300 * time.Millisecond)
	tm.send("stty size\r")
	off = tm.waitFor("30 100", off, 10*time.Second)

	// Ctrl-C reaches the foreground process in the sandbox, not moat.
	tm.send("sleep 1000\r")
	time.Sleep(500 * time.Millisecond)
	tm.send("\x03")
	tm.send("echo AFTER$((1+1))\r")
	off = tm.waitFor("AFTER2", off, 10*time.Second)
	// Ctrl-Z too: the sandbox's shell suspends its job, moat keeps running.
	tm.send("sleep 1000\r")
	time.Sleep(500 * time.Millisecond)
	tm.send("\x1a")
	off = tm.waitFor("Stopped", off, 10*time.Second)
	tm.send("kill -9 %1; wait; echo Z$((2+3))\r")
	off = tm.waitFor("Z5", off, 10*time.Second)

	// The remote exit code is moat's.
	tm.send("exit 5\r")
	if code := tm.wait(30 * time.Second); code != 5 {
		t.Fatalf("moat run exit code %d, want 5; output:\n%s", code, tm.output())
	}
	if st := h.status(name); st != "running" {
		t.Fatalf("sandbox after the agent exited: %q (should keep running)", st)
	}

	// 3. exec -it a shell and type into it; install a file on the writable disk.
	h.ok("exec", "-u", "root", name, "sh", "-c", "echo persisted > /usr/local/bin/marker")
	et := h.startPTY("exec", "-it", name, "sh")
	eoff := et.waitFor("$", 0, 20*time.Second)
	et.send("echo TYPED$((2*3)) $(id -un)\r")
	et.waitFor("TYPED6 agent", eoff, 10*time.Second)
	et.send("exit 0\r")
	if code := et.wait(20 * time.Second); code != 0 {
		t.Fatalf("exec -it exit %d", code)
	}

	// The terminal is restored after a tty session, and the exit code is moat's.
	rt := h.startPTYCmd(exec.Command("sh", "-c", h.bin+" exec -it "+name+" sh -c 'exit 3'; echo rc=$?; stty -a"))
	rt.wait(30 * time.Second)
	if o := rt.output(); !strings.Contains(o, "rc=3") || !strings.Contains(o, " icanon") || !strings.Contains(o, " echo ") || strings.Contains(o, "-icanon") {
		t.Fatalf("terminal after exec -it:\n%s", o)
	}

	// exec without a tty, exit codes, stdin, env.
	if r := h.moatIn("piped-input", "exec", "-i", name, "cat"); r.code != 0 || r.stdout != "piped-input" {
		t.Fatalf("exec -i cat: %+v", r)
	}
	if r := h.moat("exec", name, "sh", "-c", "exit 9"); r.code != 9 {
		t.Fatalf("exec exit code %d", r.code)
	}
	if out := h.ok("exec", "-e", "MOAT_E2E=yes", name, "sh", "-c", "echo $MOAT_E2E"); out != "yes\n" {
		t.Fatalf("exec -e: %q", out)
	}
	// A secret in the caller's environment and in an exec's env reaches the
	// process only: not the daemon's or supervisor's environment, not a log.
	const secret = "sk-e2e-not-a-real-key"
	if out := h.ok("exec", "-e", "ANTHROPIC_API_KEY="+secret, name, "sh", "-c", "echo ${#ANTHROPIC_API_KEY}"); out != fmt.Sprintf("%d\n", len(secret)) {
		t.Fatalf("secret did not reach the process: %q", out)
	}
	for _, pf := range []string{filepath.Join(h.home, "vmhost.pid"), filepath.Join(h.home, "sandboxes", name, "supervisor.pid")} {
		b, err := os.ReadFile(pf)
		if err != nil {
			t.Fatal(err)
		}
		env, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(env, []byte(secret)) {
			t.Fatalf("%s: the secret is in the process environment", pf)
		}
	}
	filepath.Walk(h.home, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() < 64<<20 {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("the secret is in %s", p)
			}
		}
		return nil
	})

	// 4. kill -9 the daemon: the sandbox keeps running, a new daemon lists
	// it, and a session attached before the kill keeps working.
	at := h.startPTY("exec", "-it", name, "sh")
	aoff := at.waitFor("$", 0, 20*time.Second)
	pidb, err := os.ReadFile(filepath.Join(h.home, "vmhost.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidb)))
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if st := h.status(name); st != "running" {
		t.Fatalf("after kill -9 of the daemon: %q", st)
	}
	if pidb2, _ := os.ReadFile(filepath.Join(h.home, "vmhost.pid")); string(pidb2) == string(pidb) {
		t.Fatalf("no new daemon")
	}
	if out := h.ok("exec", name, "cat", "/usr/local/bin/marker"); out != "persisted\n" {
		t.Fatalf("exec after daemon restart: %q", out)
	}
	at.send("echo SURVIVED$((3+4))\r")
	at.waitFor("SURVIVED7", aoff, 10*time.Second)
	at.send("exit 0\r")
	if code := at.wait(20 * time.Second); code != 0 {
		t.Fatalf("session attached across the daemon kill: exit %d", code)
	}

	// 5. stop -> stopped; a session attached at the time says why it
	// ended; exec on a stopped sandbox fails cleanly.
	st := h.startPTY("exec", "-it", name, "sh")
	soff := st.waitFor("$", 0, 20*time.Second)
	st.send("echo ATTACHED\r")
	st.waitFor("ATTACHED", soff, 10*time.Second)
	h.ok("stop", name)
	if code := st.wait(30 * time.Second); code == 0 || !strings.Contains(st.output(), "moat: sandbox "+name+" stopped; the session ended") {
		t.Fatalf("session open during stop: exit %d, output:\n%s", code, st.output())
	}
	if st := h.status(name); st != "stopped" {
		t.Fatalf("after stop: %q", st)
	}
	h.fails("moat run "+name, "exec", name, "true")

	// 6. run again: the file installed earlier is still there.
	h.ok("run", "-d", "-q", "shell", ws)
	if out := h.ok("exec", name, "cat", "/usr/local/bin/marker"); out != "persisted\n" {
		t.Fatalf("marker after restart: %q", out)
	}
	if out := h.ok("run", "-d", "-q", name); out != name+"\n" {
		t.Fatalf("run -d -q NAME printed %q, want the name", out)
	}

	// inspect and logs.
	insp := h.ok("inspect", name)
	if !strings.Contains(insp, `"status": "running"`) || !strings.Contains(insp, ws) {
		t.Fatalf("inspect: %s", insp)
	}
	if r := h.moat("exec", "-u", "root", name, "touch", extra+"/y"); r.code == 0 {
		t.Fatalf("root wrote to a :ro workspace")
	}
	if logs := h.ok("logs", name); !strings.Contains(logs, "moat-guest") {
		t.Fatalf("logs: %.300s", logs)
	}

	// 7. rm: the disk is gone, ls is empty.
	disk := filepath.Join(h.home, "sandboxes", name, "data.img")
	if _, err := os.Stat(disk); err != nil {
		t.Fatal(err)
	}
	h.ok("rm", name)
	if _, err := os.Stat(disk); !os.IsNotExist(err) {
		t.Fatalf("disk after rm: %v", err)
	}
	if out := h.ok("ls", "-q"); out != "" {
		t.Fatalf("ls after rm: %q", out)
	}
	t.Logf("seed flow: %v", time.Since(start).Round(time.Millisecond))
}

func TestBadInput(t *testing.T) {
	h := setup(t)
	ws := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(ws, 0o755)
	file := filepath.Join(ws, "a-file")
	os.WriteFile(file, nil, 0o644)

	h.fails("does not exist", "run", "shell", filepath.Join(ws, "missing"))
	h.fails("not a directory", "run", "shell", file)
	h.fails("invalid sandbox name", "run", "--name", "bad name!", "shell", ws)
	h.fails("refusing to share the filesystem root", "run", "shell", "/")
	h.fails(`unknown agent "nope"`, "create", "nope", ws)
	h.fails(`no sandbox or agent named "nope"`, "run", "nope")
	h.fails(`no sandbox named "ghost"`, "rm", "ghost")
	h.fails(`no sandbox named "ghost"`, "exec", "ghost", "true")
	h.fails(`no sandbox named "ghost"`, "stop", "ghost")
	h.fails("pass -f", "reset")
	// moat's own files are out of every sandbox's reach: a sandbox that
	// could write its state could rewrite another's record.
	h.fails("is inside moat's state directory", "create", "shell", h.home)
	h.fails("contains moat's state directory", "run", "-d", "shell", filepath.Dir(h.home))
	h.fails("contains moat's binary", "create", "shell", filepath.Dir(h.bin))
	if out := h.ok("ls", "-q"); out != "" {
		t.Fatalf("bad input created %q", out)
	}
	h.ok("create", "--name", "dup", "shell", ws)
	h.fails(`a sandbox named "dup" exists`, "create", "--name", "dup", "shell", ws)
	// An unreadable state file: clear errors, listed as error, removable.
	rec := filepath.Join(h.home, "sandboxes", "dup", "sandbox.json")
	os.WriteFile(rec, []byte("{not json"), 0o600)
	h.fails("unreadable", "run", "dup")
	h.fails("unreadable", "inspect", "dup")
	if st := h.status("dup"); st != "error:" {
		t.Fatalf("ls of an unreadable sandbox: %q", st)
	}
	h.ok("rm", "-f", "dup")
	if out := h.ok("ls", "-q"); out != "" {
		t.Fatalf("after rm -f: %q", out)
	}
}

func TestClaudeWithoutBinary(t *testing.T) {
	h := setup(t)
	ws := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(ws, 0o755)
	os.Chmod(ws, 0o777) // no "belongs to root" note when the test runs as root
	h.fails(`template "base" has no "claude" binary on PATH for user agent`, "run", "-q", "-t", "base", "claude", ws)
	h.ok("rm", "claude-proj")
	_ = fmt.Sprint
}

// Ctrl-C while `moat run` is still booting the sandbox ends the client with
// 130 and a message, not silently; the boot goes on and the next run reuses it.
func TestInterruptDuringBoot(t *testing.T) {
	h := setup(t)
	ws := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(ws, 0o755)
	tm := h.startPTY("run", "shell", ws)
	tm.waitFor("shell-proj: starting", 0, time.Minute)
	tm.send("\x03")
	if code := tm.wait(30 * time.Second); code != 130 {
		t.Fatalf("exit %d after Ctrl-C; output:\n%s", code, tm.output())
	}
	if o := tm.output(); !strings.Contains(o, "sandbox shell-proj goes on starting in the background") || strings.Contains(o, "goroutine") {
		t.Fatalf("output after Ctrl-C:\n%s", o)
	}
	if st := h.status("shell-proj"); !strings.HasPrefix(st, "starting") && !strings.HasPrefix(st, "running") {
		t.Fatalf("after Ctrl-C the sandbox is %q", st)
	}
	if out := h.ok("run", "-d", "-q", "shell-proj"); out != "shell-proj\n" {
		t.Fatalf("run -d after Ctrl-C: %q", out)
	}
	if out := h.ok("exec", "shell-proj", "echo", "up"); out != "up\n" {
		t.Fatalf("exec: %q", out)
	}
	b, _ := os.ReadFile(filepath.Join(h.home, "sandboxes", "shell-proj", "supervisor.log"))
	if n := strings.Count(string(b), "phase: booting"); n != 1 {
		t.Fatalf("%d boots:\n%s", n, b)
	}
}

// Ten concurrent `moat run` on one workspace, on a fresh state directory
// (so they also race to auto-start the daemon): exactly one sandbox, one VM.
func TestConcurrentRun(t *testing.T) {
	h := setup(t)
	ws := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(ws, 0o755)
	var wg sync.WaitGroup
	res := make([]result, 10)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = h.moat("run", "-d", "-q", "shell", ws)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if out := h.ok("ls", "-q"); out != "shell-proj\n" {
		t.Fatalf("ls: %q", out)
	}
	b, _ := os.ReadFile(filepath.Join(h.home, "sandboxes", "shell-proj", "supervisor.log"))
	if n := strings.Count(string(b), "phase: booting"); n != 1 {
		t.Fatalf("%d boots:\n%s", n, b)
	}
	if n := strings.Count(string(h.ok("exec", "shell-proj", "echo", "one")), "one"); n != 1 {
		t.Fatalf("exec: %d", n)
	}
}

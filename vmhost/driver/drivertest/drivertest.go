// Package drivertest is the conformance suite every VM driver must pass.
//
// Run boots real VMs through vm.Boot (the same path real sandboxes take) and
// checks what a sandbox promises: exec with exit codes, stdin, a terminal
// that follows resizes, environment and working directory, users, shared
// folders at the same absolute path in both directions (spaces and non-ASCII
// in names), read-only shares, symlinks that must not escape the share,
// graceful stop, persistence of the writable disk across stop/start, and
// recovery after the hypervisor is killed.
//
// A driver's own test calls Run with a fresh Driver; see qemu_test.go.
package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/vm"
)

// RequireEnv, when set to 1, turns "no guest assets / hypervisor here" from a
// skip into a failure. CI sets it so the suite can never silently not run.
const RequireEnv = "MOAT_REQUIRE_VM"

// Assets finds the guest assets or skips (fails under MOAT_REQUIRE_VM=1).
func Assets(t testing.TB) *assets.Set {
	t.Helper()
	a, err := assets.Find("")
	if err != nil {
		unavailable(t, err)
	}
	return a
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s=1 but the VM suite cannot run: %v", RequireEnv, err)
	}
	t.Skipf("VM suite not runnable here: %v", err)
}

// fixture is the host side of one sandbox used across the suite.
type fixture struct {
	t        *testing.T
	d        driver.Driver
	a        *assets.Set
	dir      string // state dir (short, for sockets)
	ws       string // read-write workspace (path has a space and non-ASCII)
	ro       string // read-only workspace
	outside  string // host folder outside every share, holding a secret
	dataDisk string
	boots    int
	agentUID uint32
}

// Run executes the suite against d.
func Run(t *testing.T, d driver.Driver) {
	if err := d.Available(); err != nil {
		unavailable(t, err)
	}
	a := Assets(t)
	f := newFixture(t, d, a)

	v := f.boot()
	t.Run("Ready", func(t *testing.T) { f.checkReady(t, v) })
	t.Run("Echo", func(t *testing.T) { f.testEcho(t, v) })
	t.Run("ExitCodes", func(t *testing.T) { f.testExitCodes(t, v) })
	t.Run("SignalKill", func(t *testing.T) { f.testSignal(t, v) })
	t.Run("NotFound", func(t *testing.T) { f.testNotFound(t, v) })
	t.Run("Stdin", func(t *testing.T) { f.testStdin(t, v) })
	t.Run("TTYSizeAndResize", func(t *testing.T) { f.testTTY(t, v) })
	t.Run("EnvCwdUser", func(t *testing.T) { f.testEnvCwd(t, v) })
	t.Run("WorkspaceBothWays", func(t *testing.T) { f.testWorkspace(t, v) })
	t.Run("ReadOnlyWorkspace", func(t *testing.T) { f.testReadOnly(t, v) })
	t.Run("SymlinksDoNotEscape", func(t *testing.T) { f.testSymlinks(t, v) })

	// Persistence across a graceful stop.
	f.mustRun(v, "root", "echo survives-stop > /root/marker && mkdir -p /usr/local/bin && echo tool > /usr/local/bin/tool-marker && sync")
	t.Run("GracefulStop", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		select {
		case <-v.Machine.Done():
		default:
			t.Fatal("Stop returned but the machine is still running")
		}
		if err := v.Machine.Err(); err != nil {
			t.Fatalf("graceful stop ended with an error (the guest did not power off cleanly): %v", err)
		}
		if st := v.Machine.Info().State; st != driver.StateStopped {
			t.Fatalf("state after stop = %q, want stopped", st)
		}
		if !strings.Contains(readFile(t, f.console()), "power") {
			t.Logf("console does not mention power-off; tail:\n%s", driver.ConsoleTail(f.console(), 10))
		}
	})

	v2 := f.boot()
	t.Run("WritableDiskSurvivesRestart", func(t *testing.T) {
		if got := f.mustRun(v2, "root", "cat /root/marker /usr/local/bin/tool-marker"); got != "survives-stop\ntool\n" {
			t.Fatalf("after restart: %q", got)
		}
	})
	f.mustRun(v2, "root", "echo before-kill > /root/marker2 && sync")

	t.Run("KilledHypervisorIsReportedStopped", func(t *testing.T) {
		pid := v2.Machine.Info().PID
		if pid <= 0 {
			t.Skip("driver has no hypervisor process to kill")
		}
		proc, err := os.FindProcess(pid)
		if err == nil {
			err = proc.Kill() // SIGKILL
		}
		if err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		select {
		case <-v2.Machine.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("machine not reported stopped 20s after kill -9 of the hypervisor")
		}
		if v2.Machine.Err() == nil {
			t.Fatal("a killed hypervisor must be reported with an error, got a clean stop")
		}
		if st := v2.Machine.Info().State; st != driver.StateStopped {
			t.Fatalf("state after kill = %q, want stopped", st)
		}
		t.Logf("reported: %v", v2.Machine.Err())
		v2.Agent.Close()
	})

	// The third boot also gives the agent user another uid, as when the host
	// user's uid is not 1000.
	f.agentUID = 4242
	v3 := f.boot()
	t.Run("DataIntactAfterKill", func(t *testing.T) {
		if got := f.mustRun(v3, "root", "cat /root/marker /root/marker2"); got != "survives-stop\nbefore-kill\n" {
			t.Fatalf("after kill and restart: %q", got)
		}
	})
	t.Run("AgentTakesHostUID", func(t *testing.T) { f.testAgentUID(t, v3) })
	t.Run("HypervisorPowerButton", func(t *testing.T) {
		// The hypervisor's own graceful stop (ACPI power button on QEMU)
		// must power the guest off cleanly, without the agent protocol.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := v3.Machine.Shutdown(ctx); err != nil {
			t.Fatalf("power button: %v", err)
		}
		if err := v3.Machine.Err(); err != nil {
			t.Fatalf("power button did not power the guest off cleanly: %v", err)
		}
		if !strings.Contains(readFile(t, f.console()), "power button") {
			t.Errorf("the guest did not log the power button; console tail:\n%s", driver.ConsoleTail(f.console(), 10))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v3.Stop(ctx)
}

func (f *fixture) testAgentUID(t *testing.T, v *vm.VM) {
	if got := f.mustRun(v, "", "id -u; stat -c %u /home/agent"); got != "4242\n4242\n" {
		t.Fatalf("agent uid / home owner: %q", got)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a host file to uid 4242")
	}
	p := filepath.Join(f.ws, "owned-by-4242.txt")
	if err := os.WriteFile(p, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(p, 4242, 4242)
	r := run(t, v, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", `echo guest >> "$1"`, "sh", p}}, nil)
	if r.status.Code != 0 {
		t.Fatalf("agent cannot edit a file of the host user it maps to: %+v", r)
	}
	if b, _ := os.ReadFile(p); string(b) != "host\nguest\n" {
		t.Fatalf("host sees %q", b)
	}
}

func newFixture(t *testing.T, d driver.Driver, a *assets.Set) *fixture {
	// Short base dir: unix socket paths are limited to ~100 bytes.
	dir, err := os.MkdirTemp("", "moat-dt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir, _ = filepath.EvalSymlinks(dir)
	f := &fixture{t: t, d: d, a: a, dir: dir}
	f.ws = filepath.Join(dir, "my project ü", "src")
	f.ro = filepath.Join(dir, "reference (ro)")
	f.outside = filepath.Join(dir, "outside")
	for _, p := range []string{f.ws, f.ro, f.outside} {
		if err := os.MkdirAll(p, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o777)
	}
	if err := os.WriteFile(filepath.Join(f.outside, "secret.txt"), []byte("HOST-SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.ro, "readme.txt"), []byte("read me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.dataDisk = filepath.Join(dir, "data.img")
	return f
}

func (f *fixture) console() string {
	return filepath.Join(f.dir, fmt.Sprintf("console-%d.log", f.boots))
}

func (f *fixture) boot() *vm.VM {
	f.t.Helper()
	f.boots++
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, err := vm.Boot(ctx, f.d, vm.Options{
		Name:       "conformance",
		Assets:     f.a,
		DataDisk:   f.dataDisk,
		DataSize:   1 << 30,
		CPUs:       2,
		MemoryMiB:  1024,
		Workspaces: []vm.Workspace{{HostPath: f.ws}, {HostPath: f.ro, ReadOnly: true}},
		Network:    true,
		AgentUID:   f.agentUID,
		RunDir:     filepath.Join(f.dir, "run"),
		ConsoleLog: f.console(),
	})
	if err != nil {
		f.t.Fatalf("boot %d: %v", f.boots, err)
	}
	f.t.Logf("boot %d: ready in %v (guest ready at %.0f ms since kernel start)", f.boots, v.BootTime.Round(time.Millisecond), v.Ready.Timings.ReadyMS)
	f.t.Cleanup(func() {
		select {
		case <-v.Machine.Done():
		default:
			v.Machine.Kill()
			<-v.Machine.Done()
		}
	})
	return v
}

// result of one exec.
type result struct {
	stdout, stderr string
	status         protocol.ExitStatus
}

func run(t testing.TB, v *vm.VM, req protocol.ExecRequest, stdin io.Reader) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	st, err := v.Agent.Run(ctx, req, agentclient.Stdio{Stdin: stdin, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("exec %q: %v", req.Argv, err)
	}
	return result{out.String(), errb.String(), st}
}

func sh(user, script string) protocol.ExecRequest {
	return protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", script}, User: user}
}

func (f *fixture) mustRun(v *vm.VM, user, script string) string {
	f.t.Helper()
	r := run(f.t, v, sh(user, script), nil)
	if r.status.Code != 0 {
		f.t.Fatalf("%q as %s: exit %d, stderr %q, error %q", script, user, r.status.Code, r.stderr, r.status.Error)
	}
	return r.stdout
}

func (f *fixture) checkReady(t *testing.T, v *vm.VM) {
	r := v.Ready
	if r.Version != protocol.Version {
		t.Fatalf("ready version %d", r.Version)
	}
	if r.Kernel != f.a.KernelRelease {
		t.Errorf("guest kernel %q, assets say %q", r.Kernel, f.a.KernelRelease)
	}
	tm := r.Timings
	if tm.InitStartMS <= 0 || tm.ReadyMS < tm.InitStartMS {
		t.Errorf("implausible boot timings: %+v", tm)
	}
	t.Logf("timings: %+v", tm)
	if got := f.mustRun(v, "", "hostname"); strings.TrimSpace(got) != "conformance" {
		t.Errorf("hostname = %q", got)
	}
	// Modules disk: every module of the kernel is reachable.
	if got := f.mustRun(v, "root", "test -f /lib/modules/$(uname -r)/modules.dep && echo ok"); got != "ok\n" {
		t.Errorf("modules disk not mounted at /lib/modules/<release>: %q", got)
	}
	// Clock set from the host (within a minute).
	out := f.mustRun(v, "", "date +%s")
	var guest int64
	fmt.Sscan(out, &guest)
	if d := time.Now().Unix() - guest; d > 60 || d < -60 {
		t.Errorf("guest clock off by %ds", d)
	}
	// The root is the overlay of the base and the writable disk.
	if got := f.mustRun(v, "", "grep -c ' / overlay ' /proc/mounts"); strings.TrimSpace(got) != "1" {
		t.Errorf("root is not an overlay: %q", f.mustRun(v, "", "cat /proc/mounts"))
	}
	if got := f.mustRun(v, "", "ip addr show eth0 2>/dev/null | grep -o 'inet [0-9./]*' || ifconfig eth0 | grep -o 'inet addr:[0-9.]*'"); got == "" {
		t.Errorf("eth0 has no address")
	}
}

func (f *fixture) testEcho(t *testing.T, v *vm.VM) {
	r := run(t, v, protocol.ExecRequest{Argv: []string{"echo", "hello", "world"}}, nil)
	if r.stdout != "hello world\n" || r.status.Code != 0 {
		t.Fatalf("echo: %+v", r)
	}
	r = run(t, v, sh("", "echo out; echo err >&2"), nil)
	if r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("stdout/stderr not separated: %+v", r)
	}
	// Large output arrives whole.
	r = run(t, v, sh("", "head -c 3000000 /dev/zero | tr '\\0' x"), nil)
	if len(r.stdout) != 3000000 || strings.Trim(r.stdout, "x") != "" {
		t.Fatalf("large output: got %d bytes", len(r.stdout))
	}
}

func (f *fixture) testExitCodes(t *testing.T, v *vm.VM) {
	for _, c := range []struct {
		script string
		code   int
		sig    int
	}{{"exit 0", 0, 0}, {"exit 1", 1, 0}, {"exit 42", 42, 0}, {"kill -9 $$", 137, 9}, {"kill -TERM $$", 143, 15}} {
		r := run(t, v, sh("", c.script), nil)
		if r.status.Code != c.code || r.status.Signal != c.sig {
			t.Errorf("%q: status %+v, want code %d signal %d", c.script, r.status, c.code, c.sig)
		}
	}
}

func (f *fixture) testSignal(t *testing.T, v *vm.VM) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := v.Agent.Start(ctx, protocol.ExecRequest{Argv: []string{"sleep", "300"}}, agentclient.Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID <= 0 {
		t.Errorf("started pid %d", p.PID)
	}
	if err := p.Signal(9); err != nil {
		t.Fatal(err)
	}
	st, err := p.Wait()
	if err != nil || st.Code != 137 {
		t.Fatalf("after SIGKILL: %+v %v", st, err)
	}
}

func (f *fixture) testNotFound(t *testing.T, v *vm.VM) {
	r := run(t, v, protocol.ExecRequest{Argv: []string{"/no/such/binary"}}, nil)
	if r.status.Code != 127 || r.status.Error == "" {
		t.Fatalf("missing binary: %+v", r.status)
	}
	r = run(t, v, protocol.ExecRequest{Argv: []string{"true"}, Dir: "/no/such/dir"}, nil)
	if r.status.Code == 0 {
		t.Fatalf("bad dir accepted: %+v", r.status)
	}
	r = run(t, v, protocol.ExecRequest{Argv: []string{"true"}, User: "nosuchuser"}, nil)
	if r.status.Code == 0 || !strings.Contains(r.status.Error, "nosuchuser") {
		t.Fatalf("bad user: %+v", r.status)
	}
}

func (f *fixture) testStdin(t *testing.T, v *vm.VM) {
	in := strings.Repeat("line of input\n", 5000)
	r := run(t, v, protocol.ExecRequest{Argv: []string{"wc", "-c"}}, strings.NewReader(in))
	if strings.TrimSpace(r.stdout) != fmt.Sprint(len(in)) {
		t.Fatalf("wc -c of %d bytes printed %q", len(in), r.stdout)
	}
	r = run(t, v, protocol.ExecRequest{Argv: []string{"cat"}}, strings.NewReader("round trip ü\n"))
	if r.stdout != "round trip ü\n" {
		t.Fatalf("cat: %q", r.stdout)
	}
}

// syncBuf is a bytes.Buffer safe for a writer goroutine and a polling reader.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitFor(t *testing.T, b *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; terminal shows %q", want, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) testTTY(t *testing.T, v *vm.VM) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	out := &syncBuf{}
	p, err := v.Agent.Start(ctx, protocol.ExecRequest{
		Argv: []string{"/bin/sh", "-c", "stty size; [ -t 0 ] && echo is-a-tty; echo TERM=$TERM; read x; stty size; read y; echo got:$y"},
		TTY:  true, Size: protocol.WindowSize{Rows: 33, Cols: 101},
	}, agentclient.Stdio{Stdin: pr, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "TERM=")
	if !strings.Contains(out.String(), "33 101") || !strings.Contains(out.String(), "is-a-tty") {
		t.Fatalf("initial terminal: %q", out.String())
	}
	if err := p.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	io.WriteString(pw, "\n")
	waitFor(t, out, "40 120")
	io.WriteString(pw, "typed\n")
	st, err := p.Wait()
	if err != nil || st.Code != 0 {
		t.Fatalf("tty exec: %+v %v; output %q", st, err, out.String())
	}
	if !strings.Contains(out.String(), "got:typed") {
		t.Fatalf("typed input not read: %q", out.String())
	}
	if !strings.Contains(out.String(), "\r\n") {
		t.Errorf("terminal output has no CRLF (not a real tty?): %q", out.String())
	}
}

func (f *fixture) testEnvCwd(t *testing.T, v *vm.VM) {
	r := run(t, v, protocol.ExecRequest{
		Argv: []string{"/bin/sh", "-c", `echo "$FOO|$(pwd)|$(id -u)|$HOME|$USER"`},
		Env:  []string{"FOO=bar baz"}, Dir: f.ws,
	}, nil)
	want := "bar baz|" + f.ws + "|1000|/home/agent|agent\n"
	if r.stdout != want {
		t.Fatalf("env/cwd/user: got %q want %q", r.stdout, want)
	}
	if got := f.mustRun(v, "root", "id -u"); got != "0\n" {
		t.Fatalf("root on request: %q", got)
	}
	if got := f.mustRun(v, "", "cd && pwd"); got != "/home/agent\n" {
		t.Fatalf("agent home: %q", got)
	}
}

func (f *fixture) testWorkspace(t *testing.T, v *vm.VM) {
	name := "from guest ü 'q' $x.txt"
	r := run(t, v, protocol.ExecRequest{
		Argv: []string{"/bin/sh", "-c", `printf 'written in the guest\n' > "$1/$2"`, "sh", f.ws, name},
	}, nil)
	if r.status.Code != 0 {
		t.Fatalf("guest write failed: %+v", r)
	}
	b, err := os.ReadFile(filepath.Join(f.ws, name))
	if err != nil || string(b) != "written in the guest\n" {
		t.Fatalf("host sees %q, %v", b, err)
	}
	hostName := "from host ünïcode dir"
	if err := os.MkdirAll(filepath.Join(f.ws, hostName), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.ws, hostName, "file.txt"), []byte("written on the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, v, protocol.ExecRequest{Argv: []string{"cat", filepath.Join(f.ws, hostName, "file.txt")}}, nil)
	if r.stdout != "written on the host\n" {
		t.Fatalf("guest sees %q (%+v)", r.stdout, r.status)
	}
	// The guest user can modify a host file in place when it owns it. On 9p
	// (and virtiofs) the guest sees host ownership, so that means a host user
	// whose uid matches the guest's agent user (1000): see docs/platforms.md.
	if os.Geteuid() == 0 {
		os.Chown(filepath.Join(f.ws, hostName), protocol.DefaultUID, protocol.DefaultUID)
		os.Chown(filepath.Join(f.ws, hostName, "file.txt"), protocol.DefaultUID, protocol.DefaultUID)
	}
	r = run(t, v, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", `echo appended >> "$1"`, "sh", filepath.Join(f.ws, hostName, "file.txt")}}, nil)
	if r.status.Code != 0 {
		t.Fatalf("append as agent: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(f.ws, hostName, "file.txt")); string(b) != "written on the host\nappended\n" {
		t.Fatalf("after append host sees %q", b)
	}
}

func (f *fixture) testReadOnly(t *testing.T, v *vm.VM) {
	r := run(t, v, protocol.ExecRequest{Argv: []string{"cat", filepath.Join(f.ro, "readme.txt")}}, nil)
	if r.stdout != "read me\n" {
		t.Fatalf("ro share not readable: %+v", r)
	}
	for _, script := range []string{`touch "$1/new"`, `echo x >> "$1/readme.txt"`, `rm -f "$1/readme.txt"`, `mkdir "$1/d"`} {
		r = run(t, v, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", script, "sh", f.ro}, User: "root"}, nil)
		if r.status.Code == 0 {
			t.Errorf("%q succeeded on a read-only workspace", script)
		}
	}
	entries, _ := os.ReadDir(f.ro)
	if len(entries) != 1 {
		t.Errorf("read-only workspace changed on the host: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(f.ro, "readme.txt")); string(b) != "read me\n" {
		t.Errorf("read-only file changed: %q", b)
	}
}

func (f *fixture) testSymlinks(t *testing.T, v *vm.VM) {
	secret := filepath.Join(f.outside, "secret.txt")
	rel, err := filepath.Rel(f.ws, secret)
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("../", strings.Count(f.ws, "/")+3) + strings.TrimPrefix(secret, "/")
	links := map[string]string{"abs-link": secret, "rel-link": rel, "deep-rel-link": deep, "dir-link": f.outside}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(f.ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name := range links {
		p := filepath.Join(f.ws, name)
		for _, script := range []string{
			`cat "$1" 2>/dev/null; cat "$1/secret.txt" 2>/dev/null; true`,
		} {
			r := run(t, v, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", script, "sh", p}, User: "root"}, nil)
			if strings.Contains(r.stdout, "HOST-SECRET") {
				t.Errorf("guest read a host file outside the workspace through %s -> %s", name, links[name])
			}
		}
		// Writing through the link must not create or change host files outside.
		run(t, v, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", `echo pwned > "$1" ; echo pwned > "$1/new.txt"; mkdir -p "$1/sub"; true`, "sh", p}, User: "root"}, nil)
	}
	entries, _ := os.ReadDir(f.outside)
	if len(entries) != 1 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("guest created files outside the workspace on the host: %v", names)
	}
	if b, _ := os.ReadFile(secret); string(b) != "HOST-SECRET\n" {
		t.Errorf("host file outside the workspace was changed: %q", b)
	}
}

func readFile(t testing.TB, p string) string {
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

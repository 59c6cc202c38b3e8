package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/daemon/daemontest"
)

type res struct {
	code   int
	out    string
	errOut string
}

func moat(t *testing.T, stdin string, args ...string) res {
	t.Helper()
	var o, e bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &o, &e)
	return res{code, o.String(), e.String()}
}

func oneLineErr(t *testing.T, r res, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.errOut), "\n")
	if r.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "moat: ") || !strings.Contains(r.errOut, want) {
		t.Errorf("want one-line error with %q, got code %d stderr %q", want, r.code, r.errOut)
	}
}

func TestCLIFlow(t *testing.T) {
	env := daemontest.Start(t)
	ws := filepath.Join(t.TempDir(), "foo.bar")
	os.MkdirAll(ws, 0o700)
	os.Chmod(ws, 0o777) // writable by the sandbox's agent user even when the test runs as root
	ws, _ = filepath.EvalSymlinks(ws)
	name := "shell-foo-bar"

	// -d prints the name (scripts read it); -q silences only the progress line.
	if r := moat(t, "", "run", "-d", "-q", "shell", ws); r.code != 0 || r.out != name+"\n" || r.errOut != "" {
		t.Fatalf("run -d -q: %+v", r)
	}
	r := moat(t, "", "ls")
	if r.code != 0 || !strings.Contains(r.out, "NAME") || !strings.Contains(r.out, name) || !strings.Contains(r.out, "running") {
		t.Fatalf("ls: %+v", r)
	}
	r = moat(t, "", "ls", "--json")
	var l []api.Sandbox
	if err := json.Unmarshal([]byte(r.out), &l); err != nil || len(l) != 1 || l[0].Status != api.StatusRunning || l[0].Workspace() != ws {
		t.Fatalf("ls --json: %v %s", err, r.out)
	}
	if r := moat(t, "", "ls", "-q"); r.out != name+"\n" {
		t.Fatalf("ls -q: %q", r.out)
	}
	// Exit codes, stdin, env, workdir default.
	if r := moat(t, "", "exec", name, "exit", "42"); r.code != 42 {
		t.Fatalf("exec exit: %+v", r)
	}
	if r := moat(t, "in put", "exec", "-i", name, "cat"); r.code != 0 || r.out != "in put" {
		t.Fatalf("exec -i: %+v", r)
	}
	if r := moat(t, "ignored", "exec", name, "cat"); r.code != 0 || r.out != "" {
		t.Fatalf("exec without -i read stdin: %+v", r)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# c\nFROMFILE=1\n\n"), 0o600)
	if r := moat(t, "", "exec", "-e", "K=V", "--env-file", envFile, name, "env"); !strings.Contains(r.out, "K=V") || !strings.Contains(r.out, "FROMFILE=1") {
		t.Fatalf("exec -e: %+v", r)
	}
	if r := moat(t, "", "exec", name, "pwd"); r.out != ws+"\n" {
		t.Fatalf("exec pwd: %+v", r)
	}
	if r := moat(t, "", "exec", "-w", "/tmp", "-u", "root", name, "pwd"); r.out != "/tmp\n" {
		t.Fatalf("exec -w: %+v", r)
	}
	os.MkdirAll(filepath.Join(ws, "sub"), 0o777)
	if r := moat(t, "", "exec", "-w", "sub", name, "pwd"); r.out != filepath.Join(ws, "sub")+"\n" {
		t.Fatalf("exec -w relative: %+v", r)
	}
	if r := moat(t, "", "exec", name, "--", "echo", "after-dashes"); r.code != 0 || r.out != "after-dashes\n" {
		t.Fatalf("exec NAME -- CMD: %+v", r)
	}
	oneLineErr(t, moat(t, "", "exec", name, "--"), "needs a command after the sandbox name")
	if r := moat(t, "", "exec", "-u", "root", name, "whoami"); r.out != "root\n" {
		t.Fatalf("exec -u: %+v", r)
	}
	oneLineErr(t, moat(t, "", "exec", name, "nosuch"), "not found")
	// run NAME without a tty: the agent reads the pipe.
	r = moat(t, "echo from-agent\nexit 3\n", "run", "-q", name)
	if r.code != 3 || !strings.Contains(r.out, "from-agent") {
		t.Fatalf("run NAME piped: %+v", r)
	}
	// The same agent and workspace reuse the sandbox.
	if r := moat(t, "exit 0\n", "run", "-q", "shell", ws); r.code != 0 {
		t.Fatalf("rerun: %+v", r)
	}
	if env.Driver.Starts() != 1 {
		t.Fatalf("%d boots", env.Driver.Starts())
	}
	// claude: the base template has no claude binary.
	oneLineErr(t, moat(t, "", "run", "-q", "-t", "base", "claude", ws), `template "base" has no "claude" binary on PATH for user agent`)
	// inspect
	r = moat(t, "", "inspect", name)
	var insp []api.Sandbox
	if err := json.Unmarshal([]byte(r.out), &insp); err != nil || len(insp) != 1 || insp[0].Runtime == nil {
		t.Fatalf("inspect: %v %s", err, r.out)
	}
	// stop, exec on stopped, rm.
	if r := moat(t, "", "stop", name); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	oneLineErr(t, moat(t, "", "exec", name, "true"), "is stopped; start it with `moat run "+name+"`")
	if r := moat(t, "", "rm", name, "claude-foo-bar"); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	if r := moat(t, "", "ls", "-q"); r.out != "" {
		t.Fatalf("ls after rm: %q", r.out)
	}
}

func TestCLIBadInput(t *testing.T) {
	env := daemontest.Start(t)
	stateDir := env.L.Home
	os.MkdirAll(filepath.Join(stateDir, "sandboxes"), 0o700)
	ws := t.TempDir()
	f := filepath.Join(ws, "file")
	os.WriteFile(f, nil, 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "run needs an agent"},
		{[]string{"run", "shell", filepath.Join(ws, "missing")}, "does not exist"},
		{[]string{"run", "shell", f}, "not a directory"},
		{[]string{"run", "shell", "/"}, "refusing to share the filesystem root"},
		{[]string{"run", "--name", "a/b", "shell", ws}, "letters, digits"},
		{[]string{"run", "--memory", "lots", "shell", ws}, "invalid --memory"},
		{[]string{"run", "--memory", "900g", "shell", ws}, "is more than this machine has"},
		{[]string{"run", "nope", ws}, `"nope" is not an agent (agents: `},
		{[]string{"run", "--name", "", "shell", ws}, "--name is empty"},
		{[]string{"create", "--name=", "shell", ws}, "--name is empty"},
		{[]string{"exec", "-it", "ghost", "sh"}, "-t needs a terminal on stdin"},
		{[]string{"run", "nope"}, `no sandbox or agent named "nope"`},
		{[]string{"create", "nope", ws}, `unknown agent "nope"`},
		{[]string{"create", "shell"}, "needs an agent"},
		{[]string{"exec", "ghost", "true"}, `no sandbox named "ghost"`},
		{[]string{"exec", "ghost"}, "needs a sandbox name and a command"},
		{[]string{"exec", "-e", "=x", "ghost", "true"}, "invalid environment variable"},
		{[]string{"stop", "ghost"}, `no sandbox named "ghost"`},
		{[]string{"rm", "ghost"}, `no sandbox named "ghost"`},
		{[]string{"inspect", "ghost"}, `no sandbox named "ghost"`},
		{[]string{"logs", "ghost"}, `no sandbox named "ghost"`},
		{[]string{"reset"}, "pass -f"},
		{[]string{"save", "ghost", "bad tag!"}, "is not a valid template tag"},
		{[]string{"save", "ghost", "base"}, "reserved name"},
		{[]string{"save", "-o", "/nonexistent/dir/x.tar", "ghost", "t2"}, "the folder /nonexistent/dir does not exist"},
		{[]string{"save", "ghost", "t2"}, `no sandbox named "ghost"`},
		{[]string{"create", "shell", stateDir}, "is inside moat's state directory"},
		{[]string{"create", "shell", filepath.Join(stateDir, "sandboxes")}, "is inside moat's state directory"},
		{[]string{"create", "--force", "shell", filepath.Dir(stateDir)}, "contains moat's state directory"},
		{[]string{"ls", "--bogus"}, "unknown flag"},
		{[]string{"ls", "extra"}, "`moat ls` takes no arguments"},
		{[]string{"logs"}, "usage is `moat logs [-f] NAME`"},
		{[]string{"run", "--cpus", "junk", "shell", ws}, `invalid argument "junk" for "--cpus" flag: want a whole number (see`},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		oneLineErr(t, moat(t, "", c.args...), c.want)
	}
	// Nothing was created.
	if r := moat(t, "", "ls", "-q"); r.out != "" {
		t.Fatalf("bad input created %q", r.out)
	}
	// A duplicate name.
	if r := moat(t, "", "create", "--name", "dup", "shell", ws); r.code != 0 || r.out != "dup\n" {
		t.Fatalf("create: %+v", r)
	}
	oneLineErr(t, moat(t, "", "create", "--name", "dup", "shell", ws), `a sandbox named "dup" exists`)
	// rm with a mix of known and unknown names changes nothing.
	oneLineErr(t, moat(t, "", "rm", "dup", "ghost"), `no sandbox named "ghost"`)
	if r := moat(t, "", "ls", "-q"); r.out != "dup\n" {
		t.Fatalf("rm of a mix removed something: %q", r.out)
	}
	if r := moat(t, "", "reset", "-f"); r.code != 0 || !strings.Contains(r.out, "removed 1") {
		t.Fatalf("reset: %+v", r)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int{"": 0, "4g": 4096, "4G": 4096, "2048m": 2048, "2048": 2048, "1gib": 1024, "512mb": 512} {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("%q: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"x", "-1g", "0"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDaemonEnvDropsSecrets(t *testing.T) {
	got := daemonEnv([]string{"PATH=/bin", "ANTHROPIC_API_KEY=sk-secret", "GH_TOKEN=x", "MOAT_GUEST_DIR=/g", "XDG_RUNTIME_DIR=/run/u", "HOME=/h", "LC_ALL=C"})
	want := "PATH=/bin MOAT_GUEST_DIR=/g XDG_RUNTIME_DIR=/run/u HOME=/h LC_ALL=C"
	if strings.Join(got, " ") != want {
		t.Fatalf("daemonEnv = %v", got)
	}
}

func TestOneLine(t *testing.T) {
	report := "sandbox m failed to start: qemu: start-up failed: qemu exited with status 1\nqemu said:\n  qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory\ncommand: qemu-system-x86_64 -m 512000"
	want := "sandbox m failed to start: qemu: start-up failed: qemu exited with status 1; qemu said: qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory (run with --debug for the full report)"
	if got := oneLine(report, false); got != want {
		t.Fatalf("oneLine:\n%s\nwant\n%s", got, want)
	}
	if got := oneLine(report, true); got != report {
		t.Fatalf("--debug: %q", got)
	}
	if got := oneLine("plain", false); got != "plain" {
		t.Fatalf("plain: %q", got)
	}
	if got := oneLine("a\nb", false); got != "a (run with --debug for the full report)" {
		t.Fatalf("two lines: %q", got)
	}
}

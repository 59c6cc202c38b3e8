//go:build linux

package passwd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const passwdFile = `root:x:0:0:root:/root:/bin/bash
# comment
broken line
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
agent:x:1000:1000:Agent,,,:/home/agent:/bin/bash
empty:x:1001:1001::::
`

const groupFile = `root:x:0:
sudo:x:27:agent,other
docker:x:999:agent
agent:x:1000:agent
users:x:100:
`

func TestResolve(t *testing.T) {
	entries, err := ParsePasswd(strings.NewReader(passwdFile))
	if err != nil || len(entries) != 4 {
		t.Fatalf("entries %v err %v", entries, err)
	}
	groups, _ := ParseGroup(strings.NewReader(groupFile))
	u, err := Resolve(entries, groups, "agent")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1000 || u.Home != "/home/agent" || u.Shell != "/bin/bash" || !slices.Equal(u.Groups, []uint32{27, 999}) {
		t.Fatalf("agent = %+v", u)
	}
	if u, _ := Resolve(entries, groups, "1000"); u.Name != "agent" {
		t.Fatalf("uid 1000 = %+v", u)
	}
	if u, _ := Resolve(entries, groups, "0"); u.Name != "root" || u.Home != "/root" {
		t.Fatalf("uid 0 = %+v", u)
	}
	if u, _ := Resolve(entries, groups, "empty"); u.Home != "/" || u.Shell != "/bin/sh" {
		t.Fatalf("empty = %+v", u)
	}
	if u, err := Resolve(entries, groups, "4242"); err != nil || u.UID != 4242 || u.GID != 4242 || u.Home != "/" {
		t.Fatalf("4242 = %+v %v", u, err)
	}
	if _, err := Resolve(entries, groups, "ghost"); err == nil {
		t.Fatal("ghost resolved")
	}
}

func TestEnv(t *testing.T) {
	u := User{Name: "agent", Home: "/home/agent", Shell: "/bin/bash"}
	env := Env([]string{"PATH=/x", "FOO=bar"}, u, true)
	want := map[string]string{"HOME": "/home/agent", "USER": "agent", "LOGNAME": "agent", "SHELL": "/bin/bash", "PATH": "/x", "TERM": "xterm-256color", "FOO": "bar"}
	for k, v := range want {
		if got := Getenv(env, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("PATH appears %d times: %v", n, env)
	}
	if Getenv(Env(nil, u, false), "TERM") != "" {
		t.Error("TERM set without tty")
	}
	if Getenv(Env([]string{"TERM=dumb"}, u, true), "TERM") != "dumb" {
		t.Error("TERM override lost")
	}
}

func TestEnsureUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh"), 0o644) // no trailing newline
	added, err := EnsureUser(root, "agent", 1000)
	if err != nil || !added {
		t.Fatalf("added %v err %v", added, err)
	}
	u, err := Lookup(root, "agent")
	if err != nil || u.UID != 1000 || u.GID != 1000 || u.Home != "/home/agent" {
		t.Fatalf("lookup %+v %v", u, err)
	}
	if r, _ := Lookup(root, "root"); r.UID != 0 {
		t.Fatalf("root entry damaged: %+v", r)
	}
	if st, err := os.Stat(filepath.Join(root, "home/agent")); err != nil || !st.IsDir() {
		t.Fatalf("home: %v", err)
	}
	added, err = EnsureUser(root, "agent", 1000)
	if err != nil || added {
		t.Fatalf("second EnsureUser added %v err %v", added, err)
	}
}

func TestSetUID(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "home/agent/.config"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\nbob:x:501:501::/home/bob:/bin/sh\n"), 0o644)
	if old, changed, err := SetUID(root, "agent", 1000); err != nil || changed || old != 1000 {
		t.Fatalf("same uid: %d %v %v", old, changed, err)
	}
	if _, _, err := SetUID(root, "agent", 501); err == nil || !strings.Contains(err.Error(), `"bob"`) {
		t.Fatalf("taken uid: %v", err)
	}
	if os.Geteuid() == 0 {
		os.Lchown(filepath.Join(root, "home/agent"), 1000, 1000)
		os.Lchown(filepath.Join(root, "home/agent/.config"), 1000, 1000)
	}
	old, changed, err := SetUID(root, "agent", 4242)
	if err != nil || !changed || old != 1000 {
		t.Fatalf("renumber: %d %v %v", old, changed, err)
	}
	pw, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(pw), "agent:x:4242:1000:agent:/home/agent:/bin/sh\n") || !strings.Contains(string(pw), "bob:x:501:") {
		t.Fatalf("passwd now:\n%s", pw)
	}
	if os.Geteuid() == 0 {
		st, _ := os.Stat(filepath.Join(root, "home/agent/.config"))
		if fileUID(st) != 4242 {
			t.Fatalf("home not handed over: uid %d", fileUID(st))
		}
	}
	if _, _, err := SetUID(root, "nobody-here", 7); err == nil {
		t.Fatal("unknown user accepted")
	}
}

package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moatsandbox/moat/vmhost/state"
)

func TestDefaultName(t *testing.T) {
	for _, c := range []struct{ ws, want string }{
		{"/home/a/proj", "shell-proj"},
		{"/home/a/foo.bar", "shell-foo-bar"},
		{"/home/a/My Project", "shell-my-project"},
		{"/home/a/.hidden", "shell-hidden"},
		{"/home/a/café_ü", "shell-cafe_u"},
		{"/home/a/Straße Øl Ça va", "shell-strasse-ol-ca-va"},
		{"/home/a/naïve-résumé", "shell-naive-resume"},
		{"/home/a/日本語", "shell-ws-" + Suffix("/home/a/日本語")},
		{"/home/a/" + strings.Repeat("x", 100), "shell-" + strings.Repeat("x", MaxNameLen-7-6)},
	} {
		got := DefaultName("shell", c.ws)
		if got != c.want {
			t.Errorf("DefaultName(%q) = %q, want %q", c.ws, got, c.want)
		}
		if err := ValidateName(got); err != nil {
			t.Errorf("default name %q invalid: %v", got, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "proj-1", "foo.bar", "A_b+c"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "-x", "a b", "a/b", "..", "é", strings.Repeat("a", 64), "claude", "shell"} {
		err := ValidateName(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), "letters, digits") {
			t.Errorf("%q: message does not list the rules: %v", bad, err)
		}
	}
}

func TestValidateWorkspace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(dir, link)
	if _, err := ValidateWorkspace(filepath.Join(dir, "missing"), false); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: %v", err)
	}
	if _, err := ValidateWorkspace(file, false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v", err)
	}
	if _, err := ValidateWorkspace("/", false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("root: %v", err)
	}
	if _, err := ValidateWorkspace("/", true); err != nil {
		t.Errorf("root forced: %v", err)
	}
	if h, err := os.UserHomeDir(); err == nil {
		if _, err := ValidateWorkspace(h, false); err == nil {
			t.Errorf("home accepted")
		}
	}
	real, _ := filepath.EvalSymlinks(dir)
	if got, err := ValidateWorkspace(link, false); err != nil || got != real {
		t.Errorf("symlink: %q %v", got, err)
	}
	w, err := ParseWorkspace(link+":ro", false)
	if err != nil || !w.ReadOnly || w.Path != real {
		t.Errorf("ro: %+v %v", w, err)
	}
}

func newReg(t *testing.T) *Registry {
	l, err := state.New(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Registry{L: l}
}

func ws(t *testing.T, name string) Workspace {
	d := filepath.Join(t.TempDir(), name)
	os.MkdirAll(d, 0o700)
	p, err := ValidateWorkspace(d, false)
	if err != nil {
		t.Fatal(err)
	}
	return Workspace{Path: p}
}

func TestEnsureReuseAndCollisions(t *testing.T) {
	g := newReg(t)
	ctx := context.Background()
	a := ws(t, "proj")
	r1, created, err := g.Ensure(ctx, Request{Agent: "shell", Workspaces: []Workspace{a}, Reuse: true})
	if err != nil || !created || r1.Name != "shell-proj" {
		t.Fatalf("first: %+v %v %v", r1, created, err)
	}
	r2, created, err := g.Ensure(ctx, Request{Agent: "shell", Workspaces: []Workspace{a}, Reuse: true})
	if err != nil || created || r2.ID != r1.ID {
		t.Fatalf("reuse: %+v %v %v", r2, created, err)
	}
	// create (no reuse) of the same agent+workspace is refused.
	if _, _, err := g.Ensure(ctx, Request{Agent: "shell", Workspaces: []Workspace{a}}); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	// Another folder with the same base name gets a stable suffix.
	b := ws(t, "proj")
	r3, _, err := g.Ensure(ctx, Request{Agent: "shell", Workspaces: []Workspace{b}, Reuse: true})
	if err != nil || r3.Name != "shell-proj-"+Suffix(b.Path) {
		t.Fatalf("collision: %+v %v", r3, err)
	}
	// Another agent on the same folder is another sandbox.
	r4, _, err := g.Ensure(ctx, Request{Agent: "claude", Workspaces: []Workspace{a}, Reuse: true})
	if err != nil || r4.Name != "claude-proj" {
		t.Fatalf("claude: %+v %v", r4, err)
	}
	// Explicit names.
	if _, _, err := g.Ensure(ctx, Request{Agent: "shell", Name: "shell-proj", Workspaces: []Workspace{b}, Reuse: true}); !errors.Is(err, ErrConflict) {
		t.Fatalf("name used for another workspace: %v", err)
	}
	if _, _, err := g.Ensure(ctx, Request{Agent: "shell", Name: "shell-proj", Workspaces: []Workspace{a}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := g.Ensure(ctx, Request{Agent: "shell", Name: "bad name", Workspaces: []Workspace{a}}); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, _, err := g.Ensure(ctx, Request{Agent: "nope", Workspaces: []Workspace{a}}); err == nil || !strings.Contains(err.Error(), "unknown agent") {
		t.Fatalf("unknown agent: %v", err)
	}
	es, _ := g.List()
	if len(es) != 3 {
		t.Fatalf("list: %d entries", len(es))
	}
	if err := g.Remove(ctx, "shell-proj"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get("shell-proj"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	if err := g.Remove(ctx, "shell-proj"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestEnsureConcurrent(t *testing.T) {
	g := newReg(t)
	a := ws(t, "proj")
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate registries: separate lock file descriptors, like processes.
			g2 := &Registry{L: g.L}
			r, _, err := g2.Ensure(context.Background(), Request{Agent: "shell", Workspaces: []Workspace{a}, Reuse: true})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different sandboxes: %v", ids)
		}
	}
	es, _ := g.List()
	if len(es) != 1 {
		t.Fatalf("%d sandboxes", len(es))
	}
}

func TestUnreadableRecord(t *testing.T) {
	g := newReg(t)
	a := ws(t, "proj")
	r, _, err := g.Ensure(context.Background(), Request{Agent: "shell", Workspaces: []Workspace{a}, Reuse: true})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(g.Paths(r).Record(), []byte("{garbage"), 0o600)
	if _, err := g.Get(r.Name); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "moat rm -f") {
		t.Fatalf("get: %v", err)
	}
	es, _ := g.List()
	if len(es) != 1 || es[0].Err == nil {
		t.Fatalf("list: %+v", es)
	}
	// The workspace's sandbox might be the unreadable one: run must not
	// quietly create a second sandbox beside it.
	if _, _, err := g.Ensure(context.Background(), Request{Agent: "shell", Workspaces: []Workspace{a}, Reuse: true}); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "moat rm -f shell-proj") {
		t.Fatalf("ensure beside an unreadable record: %v", err)
	}
	if es, _ := g.List(); len(es) != 1 {
		t.Fatalf("a second sandbox was created: %+v", es)
	}
	if err := g.Remove(context.Background(), r.Name); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateAndNestedWorkspacesRefused(t *testing.T) {
	g := newReg(t)
	a := ws(t, "proj")
	inner := filepath.Join(a.Path, "sub")
	os.MkdirAll(inner, 0o700)
	for _, c := range []struct {
		ws   []Workspace
		want string
	}{
		{[]Workspace{a, {Path: a.Path, ReadOnly: true}}, "listed twice"},
		{[]Workspace{a, {Path: inner}}, "is inside workspace"},
		{[]Workspace{{Path: inner}, a}, "is inside workspace"},
	} {
		if _, _, err := g.Ensure(context.Background(), Request{Agent: "shell", Workspaces: c.ws, Reuse: true}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.ws, err, c.want)
		}
	}
	if es, _ := g.List(); len(es) != 0 {
		t.Fatalf("refused requests created sandboxes: %+v", es)
	}
}

func TestCheckProtected(t *testing.T) {
	prot := []Protected{{Path: "/home/u/.local/state/moat", What: "state directory"}, {Path: "/opt/moat/bin/moat", What: "binary"}}
	for _, c := range []struct {
		w     Workspace
		force bool
		want  string // "" = allowed
	}{
		{Workspace{Path: "/home/u/proj"}, false, ""},
		{Workspace{Path: "/home/u/.local/state/moatx"}, false, ""}, // a sibling with a common prefix
		{Workspace{Path: "/home/u/.local/state/moat"}, false, "is inside moat's state directory"},
		{Workspace{Path: "/home/u/.local/state/moat/sandboxes/a"}, true, "is inside moat's state directory"},
		{Workspace{Path: "/home/u/.local"}, false, "contains moat's state directory"},
		{Workspace{Path: "/home/u/.local"}, true, "contains moat's state directory"},
		{Workspace{Path: "/home/u/.local", ReadOnly: true}, false, "contains moat's state directory"},
		{Workspace{Path: "/home/u/.local", ReadOnly: true}, true, ""},
		{Workspace{Path: "/opt/moat"}, false, "contains moat's binary /opt/moat/bin/moat"},
		{Workspace{Path: "/"}, true, "contains moat's state directory"},
	} {
		err := CheckProtected(c.w, c.force, prot)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v force=%v: %v, want %q", c.w, c.force, err, c.want)
		}
	}
}

package desktop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatsandbox/moat/app/terminal"
	"github.com/moatsandbox/moat/app/tray"
	"github.com/moatsandbox/moat/keychain"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/sandbox"
)

type fakeDaemon struct {
	mu      sync.Mutex
	sbs     map[string]*api.Sandbox
	creates []sandbox.Request
	calls   []string
	events  chan api.Event
	lists   int
	failAll error
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{sbs: map[string]*api.Sandbox{}, events: make(chan api.Event, 16)}
}

func (f *fakeDaemon) List(ctx context.Context) ([]api.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.failAll != nil {
		return nil, f.failAll
	}
	var out []api.Sandbox
	for _, s := range f.sbs {
		out = append(out, *s)
	}
	return out, nil
}
func (f *fakeDaemon) Create(ctx context.Context, req sandbox.Request) (*api.CreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, req)
	name := req.Agent + "-" + filepath.Base(req.Workspaces[0].Path)
	if s, ok := f.sbs[name]; ok {
		return &api.CreateResult{Sandbox: *s}, nil
	}
	s := &api.Sandbox{Name: name, Agent: req.Agent, Workspaces: req.Workspaces, Status: api.StatusStopped, CreatedAt: time.Unix(1700000000, 0)}
	f.sbs[name] = s
	return &api.CreateResult{Sandbox: *s, Created: true}, nil
}
func (f *fakeDaemon) set(name string, st api.Status) {
	f.mu.Lock()
	if s, ok := f.sbs[name]; ok {
		s.Status = st
		if st == api.StatusRunning {
			s.Runtime = &api.Runtime{StartedAt: time.Unix(1700000100, 0)}
		}
	}
	f.mu.Unlock()
	f.events <- api.Event{Name: name, Status: st}
}
func (f *fakeDaemon) Start(ctx context.Context, name string, _ func(string)) error {
	f.mu.Lock()
	f.calls = append(f.calls, "start "+name)
	_, ok := f.sbs[name]
	f.mu.Unlock()
	if !ok {
		return &api.Error{Code: api.CodeNotFound, Message: `no sandbox named "` + name + `"`}
	}
	f.set(name, api.StatusRunning)
	return nil
}
func (f *fakeDaemon) Stop(ctx context.Context, name string, force bool) (*api.Sandbox, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "stop "+name)
	f.mu.Unlock()
	f.set(name, api.StatusStopped)
	return nil, nil
}
func (f *fakeDaemon) Remove(ctx context.Context, name string, force bool) error {
	f.mu.Lock()
	f.calls = append(f.calls, "remove "+name)
	delete(f.sbs, name)
	f.mu.Unlock()
	f.events <- api.Event{Name: name, Removed: true}
	return nil
}
func (f *fakeDaemon) Events(ctx context.Context, fn func(api.Event) bool) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-f.events:
			if !fn(e) {
				return nil
			}
		}
	}
}
func (f *fakeDaemon) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type fakeRuntime struct {
	mu      sync.Mutex
	emitted chan emitted
	confirm bool
	asked   []string
	shown   int
	quit    bool
	folder  string
}

type emitted struct {
	name string
	data any
}

func (r *fakeRuntime) Emit(n string, d any) { r.emitted <- emitted{n, d} }
func (r *fakeRuntime) ChooseFolder(string) (string, error) {
	return r.folder, nil
}
func (r *fakeRuntime) Confirm(title, msg, yes string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, title)
	return r.confirm
}
func (r *fakeRuntime) ShowWindow() { r.mu.Lock(); r.shown++; r.mu.Unlock() }
func (r *fakeRuntime) Quit()       { r.mu.Lock(); r.quit = true; r.mu.Unlock() }

type fakeTray struct{ states chan tray.State }

func (t *fakeTray) Show(s tray.State) {
	select {
	case t.states <- s:
	default:
	}
}

type memBackend struct {
	mu sync.Mutex
	m  map[string]string
}

func (b *memBackend) Set(s, u, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[u] = p
	return nil
}
func (b *memBackend) Get(s, u string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.m[u]; ok {
		return v, nil
	}
	return "", keychain.ErrNotFound
}
func (b *memBackend) Delete(s, u string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[u]; !ok {
		return keychain.ErrNotFound
	}
	delete(b.m, u)
	return nil
}

type harness struct {
	app      *App
	d        *fakeDaemon
	rt       *fakeRuntime
	tr       *fakeTray
	launched chan []string
	mu       sync.Mutex
	settings Settings
	env      map[string]string
	revealed chan string
}

func newHarness(t *testing.T) *harness {
	h := &harness{d: newFakeDaemon(), rt: &fakeRuntime{emitted: make(chan emitted, 64)}, tr: &fakeTray{states: make(chan tray.State, 64)},
		launched: make(chan []string, 8), env: map[string]string{}, revealed: make(chan string, 1)}
	h.app = NewApp(Config{
		Connect:      func(context.Context) (Daemon, error) { return h.d, nil },
		Keychain:     keychain.NewWith(&memBackend{m: map[string]string{}}, "moat-test", func(string) string { return "" }),
		SettingsPath: filepath.Join(t.TempDir(), SettingsFile),
		Moat:         "/opt/moat/bin/moat",
		GOOS:         "linux",
		Finder: terminal.Finder{LookPath: func(b string) (string, error) {
			if b == "xterm" {
				return "/usr/bin/xterm", nil
			}
			return "", errors.New("no")
		}, Stat: os.Stat},
		Launch: func(_ context.Context, s Settings, argv []string) error {
			h.mu.Lock()
			h.settings = s
			h.mu.Unlock()
			h.launched <- argv
			return nil
		},
		Reveal: func(p string) error { h.revealed <- p; return nil },
		Getenv: func(k string) string { return h.env[k] },
		Tray:   h.tr,
		Log:    func(string, ...any) {},
	})
	t.Cleanup(h.app.close)
	return h
}

// nextSandboxes waits for a "sandboxes" event matching ok.
func (h *harness) nextSandboxes(t *testing.T, ok func([]SandboxView) bool) []SandboxView {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-h.rt.emitted:
			if e.name == "sandboxes" && ok(e.data.([]SandboxView)) {
				return e.data.([]SandboxView)
			}
		case <-deadline:
			t.Fatal("no matching sandboxes event")
		}
	}
}

func TestRunInFolderCreatesStartsAndOpensTerminal(t *testing.T) {
	h := newHarness(t)
	h.app.attach(h.rt)
	h.nextSandboxes(t, func(v []SandboxView) bool { return len(v) == 0 })

	proj := filepath.Join(t.TempDir(), "my proj")
	os.MkdirAll(proj, 0o755)
	file := filepath.Join(proj, "main.go")
	os.WriteFile(file, nil, 0o644)

	name, err := h.app.RunInFolder(file) // a file → its folder
	if err != nil {
		t.Fatal(err)
	}
	if name != "claude-my proj" {
		t.Fatalf("name %q", name)
	}
	req := h.d.creates[0]
	real, _ := filepath.EvalSymlinks(proj)
	if !req.Reuse || req.Agent != "claude" || req.Workspaces[0].Path != real {
		t.Errorf("create %+v", req)
	}
	if argv := <-h.launched; !reflect.DeepEqual(argv, []string{"/opt/moat/bin/moat", "run", name}) {
		t.Errorf("terminal argv %q", argv)
	}
	if h.settings.Terminal != "xterm" {
		t.Errorf("default terminal %q", h.settings.Terminal)
	}
	v := h.nextSandboxes(t, func(v []SandboxView) bool { return len(v) == 1 && v[0].Status == "running" })
	if v[0].Workspace != real || v[0].StartedAt != "2023-11-14T22:15:00Z" || v[0].CreatedAt != "2023-11-14T22:13:20Z" {
		t.Errorf("view %+v", v[0])
	}
	// the tray follows too
	for {
		s := <-h.tr.states
		if len(s.Sandboxes) == 1 && s.Sandboxes[0].Status == tray.Running {
			break
		}
	}
	// running again reuses it and does not start it again
	if _, err := h.app.RunInFolder(proj); err != nil {
		t.Fatal(err)
	}
	<-h.launched
	if c := h.d.Calls(); !reflect.DeepEqual(c, []string{"start " + name}) {
		t.Errorf("calls %q", c)
	}
	if _, err := h.app.RunInFolder(filepath.Join(proj, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestSettingsPersistAndValidate(t *testing.T) {
	h := newHarness(t)
	s, err := h.app.GetSettings()
	if err != nil || s.Terminal != "xterm" || s.DefaultAgent != "claude" {
		t.Fatalf("%+v %v", s, err)
	}
	s.DefaultAgent, s.Terminal, s.CustomCommand, s.CPUs, s.MemoryMiB = "shell", terminal.Custom, "xterm -e {args}", 2, 2048
	if err := h.app.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	got, _ := h.app.GetSettings()
	if got != s {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []Settings{
		{Terminal: "nope", DefaultAgent: "claude"},
		{Terminal: terminal.Custom, CustomCommand: "xterm", DefaultAgent: "claude"},
		{Terminal: "xterm", DefaultAgent: "nobody"},
		{Terminal: "xterm", DefaultAgent: "claude", MemoryMiB: 10},
	} {
		if err := h.app.SaveSettings(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	// the custom command reaches the launcher
	h.d.sbs["x"] = &api.Sandbox{Name: "x", Status: api.StatusRunning}
	if err := h.app.OpenTerminal("x"); err != nil {
		t.Fatal(err)
	}
	<-h.launched
	if h.settings.CustomCommand != "xterm -e {args}" || h.settings.Terminal != terminal.Custom {
		t.Errorf("launch settings %+v", h.settings)
	}
	ts := h.app.Terminals()
	if len(ts) != 9 || ts[len(ts)-1] != (TerminalView{ID: "xterm", Name: "XTerm", Available: true}) || ts[0].Available {
		t.Errorf("terminals %+v", ts)
	}
}

func TestChooseFolderHook(t *testing.T) {
	h := newHarness(t)
	h.app.attach(h.rt)
	h.rt.folder = "/from/dialog"
	if p, _ := h.app.ChooseFolder(); p != "/from/dialog" {
		t.Error(p)
	}
	h.env[EnvChooseFolder] = "/from/env"
	if p, _ := h.app.ChooseFolder(); p != "/from/env" {
		t.Error(p)
	}
}

func TestTrayIntents(t *testing.T) {
	h := newHarness(t)
	h.app.attach(h.rt)
	proj := t.TempDir()
	h.env[EnvChooseFolder] = proj
	h.app.handle(tray.Intent{Kind: tray.RunInFolder})
	argv := <-h.launched
	name := argv[2]
	h.nextSandboxes(t, func(v []SandboxView) bool { return len(v) == 1 && v[0].Status == "running" })

	h.app.handle(tray.Intent{Kind: tray.Stop, Name: name})
	h.nextSandboxes(t, func(v []SandboxView) bool { return len(v) == 1 && v[0].Status == "stopped" })
	h.app.handle(tray.Intent{Kind: tray.OpenTerm, Name: name})
	if a := <-h.launched; a[1] != "run" || a[2] != name {
		t.Error(a)
	}
	h.app.handle(tray.Intent{Kind: tray.Reveal, Name: name})
	if p := <-h.revealed; p == "" {
		t.Error("reveal")
	}
	// Remove asks first; "no" keeps it
	h.app.handle(tray.Intent{Kind: tray.Remove, Name: name})
	if len(h.rt.asked) != 1 || len(h.d.sbs) != 1 {
		t.Fatalf("asked %q sbs %d", h.rt.asked, len(h.d.sbs))
	}
	h.rt.confirm = true
	h.app.handle(tray.Intent{Kind: tray.Remove, Name: name})
	h.nextSandboxes(t, func(v []SandboxView) bool { return len(v) == 0 })
	h.app.handle(tray.Intent{Kind: tray.OpenWindow})
	h.app.handle(tray.Intent{Kind: tray.Quit})
	if h.rt.shown != 1 || !h.rt.quit {
		t.Error("window/quit")
	}
	// errors of actions outside the window go to the error event, worded by the daemon
	h.app.handle(tray.Intent{Kind: tray.Start, Name: "ghost"})
	for e := range h.rt.emitted {
		if e.name == "error" {
			if e.data != `no sandbox named "ghost"` {
				t.Errorf("error %q", e.data)
			}
			break
		}
	}
}

func TestDropsAndSecondLaunch(t *testing.T) {
	h := newHarness(t)
	h.app.attach(h.rt)
	a, b := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(a, "f.txt"), nil, 0o644)
	h.app.runFolders([]string{filepath.Join(a, "f.txt"), a, b})
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		got[(<-h.launched)[2]] = true
	}
	select {
	case x := <-h.launched:
		t.Errorf("a folder dropped twice ran twice: %q", x)
	case <-time.After(100 * time.Millisecond):
	}
	if len(got) != 2 {
		t.Errorf("%v", got)
	}
	if p := appPaths([]string{"app", "--debug", "rel/dir", "/abs"}, "/home/u"); !reflect.DeepEqual(p, []string{"/home/u/rel/dir", "/abs"}) {
		t.Errorf("appPaths %q", p)
	}
}

func TestLoginLogout(t *testing.T) {
	h := newHarness(t)
	h.app.attach(h.rt)
	if err := h.app.Login("anthropic", "not-a-key-hunter2"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad key: %v", err)
	}
	key := "sk-ant-" + strings.Repeat("x", 60)
	if err := h.app.Login("anthropic", key); err != nil {
		t.Fatal(err)
	}
	st, err := h.app.LoginStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Provider != "anthropic" || st[0].Source != "keychain" || st[0].Masked == "" || strings.Contains(st[0].Masked, strings.Repeat("x", 20)) {
		t.Errorf("status %+v", st[0])
	}
	waitTray := func(logged bool) {
		t.Helper()
		for {
			select {
			case s := <-h.tr.states:
				if s.LoggedIn == logged {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatal("tray login state")
			}
		}
	}
	waitTray(true)
	h.rt.confirm = true
	h.app.handle(tray.Intent{Kind: tray.Logout})
	waitTray(false)
	if p := h.app.Providers(); len(p) != len(keychain.Providers) || p[0].Variable != "ANTHROPIC_API_KEY" {
		t.Errorf("providers %+v", p)
	}
}

func TestDaemonErrorReachesTray(t *testing.T) {
	h := newHarness(t)
	h.app.cfg.Connect = func(context.Context) (Daemon, error) { return nil, errors.New("the moat daemon did not answer") }
	h.app.attach(h.rt)
	for s := range h.tr.states {
		if s.DaemonError == "the moat daemon did not answer" {
			break
		}
	}
	if _, err := h.app.ListSandboxes(); err == nil {
		t.Error("no error")
	}
}

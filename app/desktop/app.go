// Package desktop is the desktop app: one process with a Wails v2 window
// (frontend/, bound to App as window.go.desktop.App, see BINDINGS.md) and a
// tray icon (app/tray). It is only a client of the vmhost API: it follows
// the daemon's event stream (no polling), opens terminals through the exec
// bridge (app/terminal) and keeps credentials in the OS keychain.
//
// Everything that needs the Wails runtime goes through the Runtime
// interface, so the logic here is unit-tested without a window.
//
// Automation hook: with MOAT_APP_CHOOSE_FOLDER=/path set, ChooseFolder
// returns that path without showing a dialog (tests, scripted demos).
package desktop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moatsandbox/moat/app/terminal"
	"github.com/moatsandbox/moat/app/tray"
	"github.com/moatsandbox/moat/keychain"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/sandbox"
)

// EnvChooseFolder answers the folder chooser without a dialog.
const EnvChooseFolder = "MOAT_APP_CHOOSE_FOLDER"

// Daemon is the part of *api.Client the app uses.
type Daemon interface {
	List(ctx context.Context) ([]api.Sandbox, error)
	Create(ctx context.Context, req sandbox.Request) (*api.CreateResult, error)
	Start(ctx context.Context, name string, progress func(phase string)) error
	Stop(ctx context.Context, name string, force bool) (*api.Sandbox, error)
	Remove(ctx context.Context, name string, force bool) error
	Events(ctx context.Context, fn func(api.Event) bool) error
}

var _ Daemon = (*api.Client)(nil)

// Runtime is what the app needs of the Wails runtime (wailsRuntime), or a
// fake in tests.
type Runtime interface {
	Emit(event string, data any)
	ChooseFolder(title string) (string, error)
	Confirm(title, message, yes string) bool
	ShowWindow()
	Quit()
}

// SandboxView is a sandbox as the frontend sees it (BINDINGS.md).
type SandboxView struct {
	Name      string `json:"name"`
	Agent     string `json:"agent"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Workspace string `json:"workspace"`
	Template  string `json:"template"`
	CreatedAt string `json:"createdAt"`
	StartedAt string `json:"startedAt,omitempty"`
	CPUs      int    `json:"cpus,omitempty"`
	MemoryMiB int    `json:"memoryMiB,omitempty"`
}

// ProviderView is one keychain provider.
type ProviderView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Variable string `json:"variable"`
	Hint     string `json:"hint"`
}

// CredentialView is a provider's masked status.
type CredentialView struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Variable string `json:"variable"`
	Masked   string `json:"masked"`
	Source   string `json:"source"`
}

// TerminalView is one terminal of this OS.
type TerminalView struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Available bool   `json:"available"`
}

// Config is what App is made of.
type Config struct {
	// Connect returns a client of a running daemon, starting one when
	// needed (the CLI's connect).
	Connect  func(ctx context.Context) (Daemon, error)
	Keychain *keychain.Keychain
	// SettingsPath is settings.json in the state dir.
	SettingsPath string
	// Moat is the absolute path of the moat binary terminals run.
	Moat   string
	GOOS   string
	Finder terminal.Finder
	// Launch opens a terminal (nil: the exec bridge with the settings).
	Launch func(ctx context.Context, s Settings, argv []string) error
	// Reveal opens a folder in the file manager.
	Reveal func(path string) error
	Getenv func(string) string
	// Service is the VM host service offered on first start (nil: not
	// offered; ServiceStatus says it is not supported).
	Service Service
	// Tray, when set, is shown every snapshot.
	Tray interface{ Show(tray.State) }
	Log  func(format string, a ...any)
}

// App is the bound struct. Only the methods of BINDINGS.md are exported.
type App struct {
	cfg Config
	rt  Runtime

	mu     sync.Mutex
	daemon Daemon
	last   []SandboxView
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed once the first snapshot is known
	once   sync.Once

	smu   sync.Mutex // settings.json
	svcMu sync.Mutex // one InstallService at a time
}

// NewApp makes an App; call attach with the runtime once the window runs.
func NewApp(cfg Config) *App {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Log == nil {
		cfg.Log = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "moat app: "+f+"\n", a...) }
	}
	if cfg.Launch == nil {
		cfg.Launch = func(ctx context.Context, s Settings, argv []string) error {
			e := &terminal.Exec{Terminal: s.Terminal, Template: s.CustomCommand, Finder: cfg.Finder}
			return e.Launch(ctx, argv)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &App{cfg: cfg, ctx: ctx, cancel: cancel, ready: make(chan struct{})}
}

// attach gives the app its runtime and starts following the daemon.
func (a *App) attach(rt Runtime) {
	a.mu.Lock()
	a.rt = rt
	a.mu.Unlock()
	go a.follow()
}

func (a *App) close() { a.cancel() }

func (a *App) runtime() Runtime {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rt
}

func (a *App) client(ctx context.Context) (Daemon, error) {
	a.mu.Lock()
	d := a.daemon
	a.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := a.cfg.Connect(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.daemon = d
	a.mu.Unlock()
	return d, nil
}

// follow subscribes to the daemon's event stream and publishes a snapshot
// after each event; it reconnects (every 3 s) when the stream breaks.
func (a *App) follow() {
	for a.ctx.Err() == nil {
		err := a.followOnce()
		if a.ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.daemon = nil // reconnect (and restart the daemon) next time
		a.mu.Unlock()
		a.publishError(err)
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

func (a *App) followOnce() error {
	d, err := a.client(a.ctx)
	if err != nil {
		return err
	}
	// Subscribe first, then take the snapshot, so no change is missed.
	subscribed := make(chan error, 1)
	go func() {
		subscribed <- d.Events(a.ctx, func(api.Event) bool {
			a.refresh(d)
			return true
		})
	}()
	a.refresh(d)
	err = <-subscribed
	if err == nil && a.ctx.Err() == nil {
		err = errors.New("the moat daemon closed its event stream")
	}
	return err
}

// refresh lists the sandboxes and publishes them.
func (a *App) refresh(d Daemon) {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	sbs, err := d.List(ctx)
	if err != nil {
		a.publishError(err)
		return
	}
	views := make([]SandboxView, 0, len(sbs))
	for i := range sbs {
		views = append(views, view(&sbs[i]))
	}
	sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
	a.mu.Lock()
	a.last = views
	rt := a.rt
	a.mu.Unlock()
	a.once.Do(func() { close(a.ready) })
	if rt != nil {
		rt.Emit("sandboxes", views)
	}
	a.showTray(views, "")
}

func (a *App) publishError(err error) {
	if err == nil {
		return
	}
	a.cfg.Log("%v", err)
	a.mu.Lock()
	views := a.last
	a.mu.Unlock()
	a.showTray(views, err.Error())
}

func (a *App) showTray(views []SandboxView, daemonErr string) {
	if a.cfg.Tray == nil {
		return
	}
	st := tray.State{DaemonError: daemonErr, LoggedIn: a.loggedIn()}
	for _, v := range views {
		st.Sandboxes = append(st.Sandboxes, tray.Sandbox{Name: v.Name, Agent: v.Agent, Status: tray.Status(v.Status), Reason: v.Reason, Workspace: v.Workspace})
	}
	a.cfg.Tray.Show(st)
}

// loggedIn: a credential for Claude is stored in the keychain.
func (a *App) loggedIn() bool {
	if a.cfg.Keychain == nil {
		return false
	}
	es, err := a.cfg.Keychain.Status()
	if err != nil {
		return false
	}
	for _, e := range es {
		if e.Source == keychain.SourceKeychain && (e.Provider.ID == "anthropic" || e.Provider.ID == "claude-oauth") {
			return true
		}
	}
	return false
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func view(s *api.Sandbox) SandboxView {
	v := SandboxView{Name: s.Name, Agent: s.Agent, Status: string(s.Status), Reason: s.Reason, Workspace: s.Workspace(),
		Template: s.Template, CreatedAt: rfc3339(s.CreatedAt), CPUs: s.CPUs, MemoryMiB: s.MemoryMiB}
	if s.Runtime != nil && s.Status == api.StatusRunning {
		v.StartedAt = rfc3339(s.Runtime.StartedAt)
	}
	return v
}

// ListSandboxes is the current snapshot from the daemon.
func (a *App) ListSandboxes() ([]SandboxView, error) {
	d, err := a.client(a.ctx)
	if err != nil {
		return nil, err
	}
	sbs, err := d.List(a.ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SandboxView, 0, len(sbs))
	for i := range sbs {
		out = append(out, view(&sbs[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// folderOf is path's folder: path itself when it is a directory, its
// parent when it is a file.
func folderOf(path string) (string, error) {
	if strings.TrimSpace(path) == "" {
		return "", errors.New("no folder given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("cannot open %s: %w", abs, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		abs = filepath.Dir(abs)
	}
	return abs, nil
}

// RunInFolder creates or reuses the default agent's sandbox for the folder
// (a file → its folder), starts it and opens it in the terminal of choice.
func (a *App) RunInFolder(path string) (string, error) {
	dir, err := folderOf(path)
	if err != nil {
		return "", err
	}
	s, err := a.GetSettings()
	if err != nil {
		return "", err
	}
	ws, err := sandbox.ParseWorkspace(dir, false)
	if err != nil {
		return "", err
	}
	d, err := a.client(a.ctx)
	if err != nil {
		return "", err
	}
	res, err := d.Create(a.ctx, sandbox.Request{Agent: s.DefaultAgent, Workspaces: []sandbox.Workspace{ws},
		Template: s.DefaultTemplate, CPUs: s.CPUs, MemoryMiB: s.MemoryMiB, Reuse: true})
	if err != nil {
		return "", err
	}
	name := res.Sandbox.Name
	if res.Sandbox.Status != api.StatusRunning {
		if err := d.Start(a.ctx, name, nil); err != nil {
			return name, err
		}
	}
	return name, a.OpenTerminal(name)
}

// ChooseFolder shows the native folder chooser; "" when cancelled.
func (a *App) ChooseFolder() (string, error) {
	if p := a.cfg.Getenv(EnvChooseFolder); p != "" {
		return p, nil
	}
	rt := a.runtime()
	if rt == nil {
		return "", errors.New("the window is not ready")
	}
	return rt.ChooseFolder("Choose a project folder for Claude")
}

// OpenTerminal opens the terminal of choice running `moat run NAME`.
func (a *App) OpenTerminal(name string) error {
	if name == "" {
		return errors.New("no sandbox given")
	}
	s, err := a.GetSettings()
	if err != nil {
		return err
	}
	return a.cfg.Launch(a.ctx, s, terminal.RunArgv(a.cfg.Moat, name))
}

// Start starts a sandbox and waits until it runs.
func (a *App) Start(name string) error {
	d, err := a.client(a.ctx)
	if err != nil {
		return err
	}
	return d.Start(a.ctx, name, nil)
}

// Stop stops a sandbox.
func (a *App) Stop(name string) error {
	d, err := a.client(a.ctx)
	if err != nil {
		return err
	}
	_, err = d.Stop(a.ctx, name, false)
	return err
}

// Remove stops a sandbox and removes it with its disk.
func (a *App) Remove(name string) error {
	d, err := a.client(a.ctx)
	if err != nil {
		return err
	}
	return d.Remove(a.ctx, name, false)
}

// RevealFolder opens the sandbox's workspace in the file manager.
func (a *App) RevealFolder(name string) error {
	ws := ""
	a.mu.Lock()
	for _, v := range a.last {
		if v.Name == name {
			ws = v.Workspace
		}
	}
	a.mu.Unlock()
	if ws == "" {
		sbs, err := a.ListSandboxes()
		if err != nil {
			return err
		}
		for _, v := range sbs {
			if v.Name == name {
				ws = v.Workspace
			}
		}
	}
	if ws == "" {
		return fmt.Errorf("no sandbox named %q", name)
	}
	if a.cfg.Reveal == nil {
		return errors.New("cannot open a file manager here")
	}
	return a.cfg.Reveal(ws)
}

// Providers is the keychain provider table.
func (a *App) Providers() []ProviderView {
	out := make([]ProviderView, 0, len(keychain.Providers))
	for _, p := range keychain.Providers {
		out = append(out, ProviderView{ID: p.ID, Name: p.Name, Variable: p.Env[0], Hint: p.Hint})
	}
	return out
}

// LoginStatus is the masked status per provider.
func (a *App) LoginStatus() ([]CredentialView, error) {
	if a.cfg.Keychain == nil {
		return nil, keychain.ErrUnavailable
	}
	es, err := a.cfg.Keychain.Status()
	if err != nil {
		return nil, err
	}
	out := make([]CredentialView, 0, len(es))
	for _, e := range es {
		v := e.Provider.Env[0]
		if e.Var != "" {
			v = e.Var
		}
		out = append(out, CredentialView{Provider: e.Provider.ID, Name: e.Provider.Name, Variable: v, Masked: e.Masked, Source: string(e.Source)})
	}
	return out, nil
}

// Login validates a secret and stores it in the OS keychain.
func (a *App) Login(provider, secret string) error {
	if a.cfg.Keychain == nil {
		return keychain.ErrUnavailable
	}
	p, err := keychain.Lookup(provider)
	if err != nil {
		return err
	}
	secret = strings.TrimSpace(secret)
	if err := p.Validate(secret); err != nil {
		return err
	}
	if err := a.cfg.Keychain.Store(p, secret); err != nil {
		return err
	}
	a.republish()
	return nil
}

// Logout removes a provider's secret from the keychain.
func (a *App) Logout(provider string) error {
	if a.cfg.Keychain == nil {
		return keychain.ErrUnavailable
	}
	p, err := keychain.Lookup(provider)
	if err != nil {
		return err
	}
	if err := a.cfg.Keychain.Remove(p); err != nil {
		return err
	}
	a.republish()
	return nil
}

// republish redraws the tray (Log in / Log out) from the last snapshot.
func (a *App) republish() {
	a.mu.Lock()
	views := a.last
	a.mu.Unlock()
	a.showTray(views, "")
}

// Terminals are the terminals known on this OS, with whether each is installed.
func (a *App) Terminals() []TerminalView {
	f := a.finder()
	var out []TerminalView
	for _, t := range terminal.ForOS(a.goos()) {
		_, err := f.Find(t)
		out = append(out, TerminalView{ID: t.ID, Name: t.Name, Available: err == nil})
	}
	return out
}

func (a *App) finder() terminal.Finder {
	if a.cfg.Finder.LookPath == nil {
		return terminal.DefaultFinder()
	}
	return a.cfg.Finder
}

// report sends an error from an action started outside the window.
func (a *App) report(err error) {
	if err == nil {
		return
	}
	a.cfg.Log("%v", err)
	if rt := a.runtime(); rt != nil {
		rt.Emit("error", err.Error())
	}
}

// runFolders runs a sandbox for each path (drops, second launches, the
// macOS Dock), each in its own goroutine; failures go to the error event.
func (a *App) runFolders(paths []string) {
	seen := map[string]bool{}
	for _, p := range paths {
		dir, err := folderOf(p)
		if err != nil {
			a.report(err)
			continue
		}
		if seen[dir] {
			continue
		}
		seen[dir] = true
		go func() {
			if _, err := a.RunInFolder(dir); err != nil {
				a.report(err)
			}
		}()
	}
}

// handle carries out a tray click.
func (a *App) handle(in tray.Intent) {
	rt := a.runtime()
	switch in.Kind {
	case tray.RunInFolder:
		p, err := a.ChooseFolder()
		if err != nil {
			a.report(err)
			return
		}
		if p != "" {
			a.runFolders([]string{p})
		}
	case tray.OpenWindow, tray.Login:
		if rt != nil {
			rt.ShowWindow()
		}
	case tray.Logout:
		if rt != nil && !rt.Confirm("Log out", "Remove your Claude credentials from the keychain?", "Log out") {
			return
		}
		for _, id := range []string{"anthropic", "claude-oauth"} {
			if err := a.Logout(id); err != nil && !errors.Is(err, keychain.ErrNotFound) {
				a.report(err)
			}
		}
	case tray.Quit:
		if rt != nil {
			rt.Quit()
		}
	case tray.OpenTerm:
		a.report(a.OpenTerminal(in.Name))
	case tray.Start:
		go func() { a.report(a.Start(in.Name)) }()
	case tray.Stop:
		go func() { a.report(a.Stop(in.Name)) }()
	case tray.Reveal:
		a.report(a.RevealFolder(in.Name))
	case tray.Remove:
		if rt == nil || !rt.Confirm("Remove "+in.Name,
			"Remove the sandbox "+in.Name+"? It is stopped and its disk (everything installed in it) is deleted. Your project folder is not touched.", "Remove") {
			return
		}
		go func() { a.report(a.Remove(in.Name)) }()
	}
}

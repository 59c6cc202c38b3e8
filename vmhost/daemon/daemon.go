// Package daemon is `moat vmhost`: the per-user daemon that serves the API
// (package api) on a 0600 unix socket, keeps the sandbox registry, starts a
// supervisor process per running sandbox and relays execs to it.
//
// The daemon keeps no state of its own in memory that matters: status is
// derived on every request from the supervisor lock (is a supervisor alive?)
// and its socket (what is it doing?), so a restarted daemon sees running
// sandboxes exactly as the previous one did.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moatsandbox/moat/internal/hostmem"
	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/supervisor"
	"github.com/moatsandbox/moat/vmhost/template"
)

// Launcher starts the supervisor of a sandbox in the background.
type Launcher interface {
	Launch(name string) error
}

// Daemon implements api.Service.
type Daemon struct {
	L        *state.Layout
	Launcher Launcher
	Version_ string
	Logf     func(format string, args ...any)
	// PollInterval is how often status is re-derived for events (default 500 ms).
	PollInterval time.Duration
	// StopTimeout bounds a graceful stop before the supervisor is killed.
	StopTimeout time.Duration
	// NoHandoff makes every exec session relay through the daemon instead
	// of being handed to the supervisor (tests of the relay path).
	NoHandoff bool

	reg     *sandbox.Registry
	once    sync.Once
	started time.Time
	exe     string
	exeMod  time.Time
	quit    chan struct{}
	quitOne sync.Once

	subMu sync.Mutex
	subs  map[chan api.Event]struct{}
	last  map[string]api.Event
}

func (d *Daemon) init() {
	d.once.Do(func() {
		d.reg = &sandbox.Registry{L: d.L}
		if d.Logf == nil {
			d.Logf = log.Printf
		}
		if d.PollInterval == 0 {
			d.PollInterval = 500 * time.Millisecond
		}
		if d.StopTimeout == 0 {
			d.StopTimeout = driver.StopTimeout + 10*time.Second
		}
		d.subs = map[chan api.Event]struct{}{}
		d.started = time.Now().UTC()
		d.quit = make(chan struct{})
		if exe, err := os.Executable(); err == nil {
			d.exe = exe
			if fi, err := os.Stat(exe); err == nil {
				d.exeMod = fi.ModTime().UTC()
			}
		}
	})
}

// ErrAlreadyRunning is returned by Serve when another daemon holds the lock.
var ErrAlreadyRunning = errors.New("another moat daemon is already serving")

// Serve listens on the layout's socket and serves until ctx ends.
func (d *Daemon) Serve(ctx context.Context) error {
	d.init()
	if err := d.L.EnsureHome(); err != nil {
		return err
	}
	lk, err := state.TryLock(d.L.DaemonLock())
	if errors.Is(err, state.ErrLocked) {
		return ErrAlreadyRunning
	}
	if err != nil {
		return err
	}
	defer lk.Unlock()
	sock := d.L.DaemonSocket()
	if err := d.L.EnsureRunDir(d.L.Runtime); err != nil {
		return err
	}
	os.Remove(sock)
	ln, err := listenPrivate(sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	defer os.Remove(sock)
	state.WriteFileAtomic(d.L.DaemonPID(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	defer os.Remove(d.L.DaemonPID())

	// Rediscover: whatever supervisors are alive are simply found by status.
	if l, err := d.List(ctx); err == nil {
		n := 0
		for _, s := range l {
			if s.Status == api.StatusRunning || s.Status == api.StatusStarting {
				n++
			}
		}
		d.Logf("moat vmhost %s serving on %s (%d sandboxes, %d running)", d.Version_, sock, len(l), n)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.poll(ctx)
	srv := &http.Server{Handler: api.NewHandler(d), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		select {
		case <-ctx.Done():
		case <-d.quit:
			time.Sleep(200 * time.Millisecond) // let the last answer go out
		}
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx)
		c()
		srv.Close()
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (d *Daemon) Version() api.VersionInfo {
	d.init()
	return api.VersionInfo{API: api.Version, Version: d.Version_, PID: os.Getpid(), Exe: d.exe, ExeModTime: d.exeMod, StartedAt: d.started}
}

// view derives a sandbox's API view from its record and live processes.
func (d *Daemon) view(ctx context.Context, r *sandbox.Record) api.Sandbox {
	p := d.reg.Paths(r)
	s := api.Sandbox{
		Name: r.Name, ID: r.ID, Agent: r.Agent, AgentArgs: r.AgentArgs, Template: r.Template, TemplateDigest: r.TemplateDigest,
		Workspaces: r.Workspaces, CPUs: r.CPUs, MemoryMiB: r.MemoryMiB, CreatedAt: r.CreatedAt,
		Paths: api.Paths{Dir: p.Dir, DataDisk: p.DataDisk(), ConsoleLog: p.ConsoleLog(), RunDir: p.RunDir},
	}
	s.Status, s.Reason, s.Runtime = d.derive(ctx, p)
	return s
}

func (d *Daemon) derive(ctx context.Context, p state.Sandbox) (api.Status, string, *api.Runtime) {
	if state.Held(p.SupervisorLock()) {
		st, err := supervisor.NewClient(p.SupervisorSocket()).Status(ctx)
		if err != nil {
			// Alive (it holds the lock) but silent: just launched, or hung.
			if fi, ferr := os.Stat(p.SupervisorPID()); ferr == nil && time.Since(fi.ModTime()) > 30*time.Second {
				return api.StatusError, fmt.Sprintf("its supervisor is alive but does not answer on %s (%v); `moat stop -f` ends it", p.SupervisorSocket(), err), nil
			}
			return api.StatusStarting, "supervisor starting", nil
		}
		rt := st.Runtime
		switch st.State {
		case supervisor.Running:
			return api.StatusRunning, "", &rt
		case supervisor.Stopping:
			return api.StatusStopping, "", &rt
		default:
			return api.StatusStarting, rt.Phase, &rt
		}
	}
	if b, err := os.ReadFile(p.LastError()); err == nil {
		return api.StatusError, strings.TrimSpace(string(b)), nil
	}
	// A pid file without a live lock holder: the supervisor died without
	// cleaning up (killed, or crashed).
	if b, err := os.ReadFile(p.SupervisorPID()); err == nil && !state.Held(p.SupervisorLock()) {
		return api.StatusError, fmt.Sprintf("its supervisor (pid %s) died unexpectedly; see %s", strings.TrimSpace(string(b)), p.SupervisorLog()), nil
	}
	return api.StatusStopped, "", nil
}

func (d *Daemon) List(ctx context.Context) ([]api.Sandbox, error) {
	d.init()
	es, err := d.reg.List()
	if err != nil {
		return nil, err
	}
	out := []api.Sandbox{}
	for _, e := range es {
		if e.Err != nil {
			out = append(out, api.Sandbox{Name: e.Name, Status: api.StatusError, Reason: e.Err.Error()})
			continue
		}
		out = append(out, d.view(ctx, e.Record))
	}
	return out, nil
}

func (d *Daemon) Get(ctx context.Context, name string) (*api.Sandbox, error) {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return nil, err
	}
	s := d.view(ctx, r)
	return &s, nil
}

func (d *Daemon) Create(ctx context.Context, req sandbox.Request) (*api.CreateResult, error) {
	d.init()
	if _, err := agents.Lookup(req.Agent); err != nil {
		return nil, api.Invalid(err)
	}
	if req.Name != "" {
		if err := sandbox.ValidateName(req.Name); err != nil {
			return nil, api.Invalid(err)
		}
	}
	if len(req.Workspaces) == 0 {
		return nil, api.Errorf(api.CodeInvalid, "a workspace is required")
	}
	for i, w := range req.Workspaces {
		p, err := sandbox.ValidateWorkspace(w.Path, req.Force)
		if err != nil {
			return nil, api.Invalid(err)
		}
		req.Workspaces[i].Path = p
		if err := sandbox.CheckProtected(req.Workspaces[i], req.Force, d.protected()); err != nil {
			return nil, api.Invalid(err)
		}
	}
	if ag, _ := agents.Lookup(req.Agent); req.Template == "" && ag.Template != agents.BaseTemplate {
		// A client that did not resolve the template (the app): the agent's
		// local default, when the store has it.
		if t, err := template.Open(d.L.TemplatesDir()).Get(ag.Template); err == nil {
			req.Template, req.TemplateDigest = t.Name, t.Digest
		}
	}
	if req.Template != "" && req.Template != agents.BaseTemplate {
		// The client resolves (pulls, loads) the template; its disk must be here.
		if req.TemplateDigest == "" {
			return nil, api.Errorf(api.CodeInvalid, "template %q is not available: the client did not resolve it (update moat)", req.Template)
		}
		if _, err := os.Stat(template.Open(d.L.TemplatesDir()).DiskPath(req.TemplateDigest)); err != nil {
			return nil, api.Errorf(api.CodeInvalid, "template %q is not available: its base disk is not in the template store (%v); pull or load it again", req.Template, err)
		}
	}
	if req.CPUs < 0 || req.CPUs > 64 {
		return nil, api.Errorf(api.CodeInvalid, "--cpus %d is out of range (1-64)", req.CPUs)
	}
	if req.MemoryMiB != 0 && (req.MemoryMiB < 256 || req.MemoryMiB > 1<<20) {
		return nil, api.Errorf(api.CodeInvalid, "--memory %d MiB is out of range (256 MiB - 1 TiB)", req.MemoryMiB)
	}
	if host := hostmem.TotalMiB(); host > 0 && req.MemoryMiB > host {
		return nil, api.Errorf(api.CodeInvalid, "--memory %d MiB is more than this machine has (%d MiB); ask for less, e.g. --memory %dm", req.MemoryMiB, host, host/2)
	}
	r, created, err := d.reg.Ensure(ctx, req)
	if err != nil {
		return nil, err
	}
	if created {
		d.Logf("created sandbox %s (%s, %s)", r.Name, r.Agent, r.Workspace())
	}
	d.kick()
	return &api.CreateResult{Sandbox: d.view(ctx, r), Created: created}, nil
}

// protected is what no workspace may contain or sit in (see
// sandbox.Protected).
func (d *Daemon) protected() []sandbox.Protected {
	dir := ""
	if set, err := assets.Find(""); err == nil {
		dir = set.Dir
	}
	return sandbox.ProtectedPaths(d.L.Home, d.L.Runtime, dir)
}

func (d *Daemon) opLock(ctx context.Context, p state.Sandbox) (*state.Lock, error) {
	return state.Acquire(ctx, p.OpLock())
}

func (d *Daemon) Start(ctx context.Context, name string, progress func(string)) error {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return err
	}
	p := d.reg.Paths(r)
	lk, err := d.opLock(ctx, p)
	if err != nil {
		return err
	}
	// A VM powering itself off: wait for its supervisor to go first.
	for i := 0; state.Held(p.SupervisorLock()); i++ {
		st, _, _ := d.derive(ctx, p)
		if st != api.StatusStopping {
			break
		}
		if time.Duration(i)*50*time.Millisecond > d.StopTimeout {
			lk.Unlock()
			return fmt.Errorf("sandbox %s is still stopping; try again later", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !state.Held(p.SupervisorLock()) {
		os.Remove(p.LastError())
		os.Remove(p.SupervisorPID())
		d.Logf("starting sandbox %s", name)
		if err := d.Launcher.Launch(name); err != nil {
			lk.Unlock()
			return fmt.Errorf("start supervisor for %s: %w", name, err)
		}
		// Wait until the supervisor holds its lock (or failed).
		deadline := time.Now().Add(15 * time.Second)
		for !state.Held(p.SupervisorLock()) {
			if b, err := os.ReadFile(p.LastError()); err == nil {
				lk.Unlock()
				return errors.New(strings.TrimSpace(string(b)))
			}
			if time.Now().After(deadline) {
				lk.Unlock()
				return fmt.Errorf("the supervisor of %s did not start; see %s", name, p.SupervisorLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
		d.kick()
	}
	lk.Unlock()
	last := ""
	for {
		st, reason, _ := d.derive(ctx, p)
		switch st {
		case api.StatusRunning:
			d.kick()
			return nil
		case api.StatusError:
			d.kick()
			return fmt.Errorf("sandbox %s failed to start: %s", name, reason)
		case api.StatusStopped:
			return fmt.Errorf("sandbox %s stopped while starting; see %s", name, p.SupervisorLog())
		case api.StatusStopping:
			return fmt.Errorf("sandbox %s is stopping; try again when it has stopped", name)
		}
		if reason != last && reason != "" && progress != nil {
			progress(reason)
			last = reason
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Daemon) Stop(ctx context.Context, name string, force bool) (*api.Sandbox, error) {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return nil, err
	}
	if err := d.stop(ctx, r, force); err != nil {
		return nil, err
	}
	s := d.view(ctx, r)
	return &s, nil
}

func (d *Daemon) stop(ctx context.Context, r *sandbox.Record, force bool) error {
	p := d.reg.Paths(r)
	lk, err := d.opLock(ctx, p)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	defer d.kick()
	os.Remove(p.LastError()) // a stopped sandbox is stopped, not failed
	if !state.Held(p.SupervisorLock()) {
		os.Remove(p.SupervisorPID())
		return nil
	}
	d.Logf("stopping sandbox %s (force=%v)", r.Name, force)
	c := supervisor.NewClient(p.SupervisorSocket())
	deadline := time.Now().Add(d.StopTimeout)
	asked := false
	for state.Held(p.SupervisorLock()) {
		if !asked {
			if c.Stop(ctx, force) == nil {
				asked = true
			} else if force {
				d.Logf("sandbox %s: supervisor does not answer; killing it", r.Name)
				killPIDFile(p.SupervisorPID())
				asked = true
			}
		}
		if time.Now().After(deadline) {
			d.Logf("sandbox %s: supervisor did not stop in %v; killing it", r.Name, d.StopTimeout)
			killPIDFile(p.SupervisorPID())
			time.Sleep(500 * time.Millisecond)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	os.Remove(p.LastError())
	if !state.Held(p.SupervisorLock()) {
		os.Remove(p.SupervisorPID())
	}
	return nil
}

func killPIDFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid == os.Getpid() { // in-process supervisors (tests)
		return
	}
	if pr, err := os.FindProcess(pid); err == nil {
		pr.Kill()
	}
}

func (d *Daemon) Remove(ctx context.Context, name string, force bool) error {
	d.init()
	r, err := d.reg.Get(name)
	switch {
	case err == nil:
		if err := d.stop(ctx, r, force); err != nil {
			return err
		}
	case errors.Is(err, sandbox.ErrUnreadable) && force:
		// An unreadable record: remove the directory as it is.
	default:
		return err
	}
	if err := d.reg.Remove(ctx, name); err != nil {
		return err
	}
	d.Logf("removed sandbox %s", name)
	if r != nil && r.TemplateDigest != "" {
		d.collectImages(ctx)
	}
	d.kick()
	return nil
}

// collectImages deletes template images that neither a name nor a sandbox
// uses any more: what `moat template rm -f` left for the sandbox just
// removed. Nothing is collected while a record is unreadable (it may use
// one).
func (d *Daemon) collectImages(ctx context.Context) {
	es, err := d.reg.List()
	if err != nil {
		return
	}
	users := map[string][]string{}
	for _, e := range es {
		if e.Err != nil {
			return
		}
		if dg := e.Record.TemplateDigest; dg != "" {
			users[dg] = append(users[dg], e.Name)
		}
	}
	removed, err := template.Open(d.L.TemplatesDir()).GC(ctx, func(dg string) []string { return users[dg] })
	if err != nil {
		d.Logf("template store clean-up: %v", err)
	}
	for _, dg := range removed {
		d.Logf("removed template image %s: no name and no sandbox uses it", dg)
	}
}

func (d *Daemon) Exec(ctx context.Context, name string, req api.ExecRequest) (io.ReadWriteCloser, error) {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return nil, err
	}
	p := d.reg.Paths(r)
	st, _, _ := d.derive(ctx, p)
	if st != api.StatusRunning {
		return nil, fmt.Errorf("%w: sandbox %s is %s; start it with `moat run %s`", api.ErrNotRunning, name, st, name)
	}
	if req, err = d.withImage(r, req); err != nil {
		return nil, err
	}
	conn, err := supervisor.NewClient(p.SupervisorSocket()).Exec(ctx, req)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, fmt.Errorf("sandbox %s: cannot reach its supervisor: %w", name, err)
	}
	return conn, nil
}

// withImage puts the template image's environment (its config Env: PATH
// and the rest) under the request's, so every client (CLI, app) gets the
// same. It is read by digest: the image a sandbox was made from stays in the
// store while the sandbox exists, even after `moat template rm -f`.
//
// The image's User and WorkingDir are not applied: the agent runs as the
// sandbox's non-root `agent` user (whose uid follows the workspace owner),
// in the workspace.
func (d *Daemon) withImage(r *sandbox.Record, req api.ExecRequest) (api.ExecRequest, error) {
	if r.TemplateDigest == "" {
		return req, nil
	}
	im, err := template.Open(d.L.TemplatesDir()).Image(r.TemplateDigest)
	if err != nil {
		return req, fmt.Errorf("sandbox %s: %w; load or pull template %q again, or remove the sandbox with `moat rm %s`", r.Name, err, r.Template, r.Name)
	}
	req.Env = im.ExecEnv(req.Env)
	return req, nil
}

// HandOff gives an exec client's connection to the sandbox's supervisor,
// so the session survives a daemon restart (api.ExecHandoff).
func (d *Daemon) HandOff(ctx context.Context, name string, req api.ExecRequest, hijack func() (net.Conn, error)) (bool, error) {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return false, err
	}
	p := d.reg.Paths(r)
	st, _, _ := d.derive(ctx, p)
	if st != api.StatusRunning {
		return false, fmt.Errorf("%w: sandbox %s is %s; start it with `moat run %s`", api.ErrNotRunning, name, st, name)
	}
	if req, err = d.withImage(r, req); err != nil {
		return false, err
	}
	if d.NoHandoff {
		return false, nil
	}
	if _, err := os.Stat(p.HandoffSocket()); err != nil {
		return false, nil // an older supervisor: relay
	}
	conn, err := hijack()
	if err != nil {
		return false, nil
	}
	return supervisor.HandOff(ctx, p.HandoffSocket(), conn, req)
}

func (d *Daemon) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	d.init()
	r, err := d.reg.Get(name)
	if err != nil {
		return nil, err
	}
	p := d.reg.Paths(r)
	f, err := os.Open(p.ConsoleLog())
	if os.IsNotExist(err) && !follow {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if !follow {
		return f, nil
	}
	return &follower{ctx: ctx, f: f, path: p.ConsoleLog(), live: func() bool { return state.Held(p.SupervisorLock()) }}, nil
}

// follower reads a growing file until ctx ends or, at end of file, the
// sandbox no longer runs.
type follower struct {
	ctx  context.Context
	f    *os.File
	path string
	live func() bool
}

func (fl *follower) Read(b []byte) (int, error) {
	for {
		if fl.f == nil {
			if f, err := os.Open(fl.path); err == nil {
				fl.f = f
			}
		}
		if fl.f != nil {
			n, err := fl.f.Read(b)
			if n > 0 || (err != nil && err != io.EOF) {
				return n, err
			}
		}
		if !fl.live() {
			return 0, io.EOF
		}
		select {
		case <-fl.ctx.Done():
			return 0, io.EOF
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (fl *follower) Close() error {
	if fl.f != nil {
		return fl.f.Close()
	}
	return nil
}

func (d *Daemon) Reset(ctx context.Context) (*api.ResetResult, error) {
	d.init()
	es, err := d.reg.List()
	if err != nil {
		return nil, err
	}
	res := &api.ResetResult{Removed: []string{}}
	var wg sync.WaitGroup
	for _, e := range es {
		if e.Record == nil {
			continue
		}
		wg.Add(1)
		go func(r *sandbox.Record) {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := d.stop(sctx, r, false); err != nil {
				d.stop(context.Background(), r, true)
			}
		}(e.Record)
	}
	wg.Wait()
	for _, e := range es {
		if err := d.reg.Remove(ctx, e.Name); err == nil {
			res.Removed = append(res.Removed, e.Name)
		}
	}
	os.RemoveAll(d.L.SandboxesDir())
	os.Remove(d.L.Runtime) // only when empty: the daemon socket may live there
	d.Logf("reset: removed %d sandboxes", len(res.Removed))
	d.kick()
	d.Shutdown()
	return res, nil
}

// Shutdown makes Serve return shortly; supervisors keep running.
func (d *Daemon) Shutdown() {
	d.init()
	d.Logf("shutting down (sandboxes keep running)")
	d.quitOne.Do(func() { close(d.quit) })
}

// Subscribe implements the events stream.
func (d *Daemon) Subscribe(ctx context.Context) ([]api.Event, <-chan api.Event) {
	d.init()
	ch := make(chan api.Event, 64)
	d.subMu.Lock()
	snap := d.snapshotLocked(ctx)
	d.subs[ch] = struct{}{}
	d.subMu.Unlock()
	out := make(chan api.Event)
	go func() {
		defer close(out)
		defer func() {
			d.subMu.Lock()
			delete(d.subs, ch)
			d.subMu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-ch:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return snap, out
}

func (d *Daemon) snapshotLocked(ctx context.Context) []api.Event {
	if d.last == nil {
		d.last = d.current(ctx)
	}
	var out []api.Event
	for _, e := range d.last {
		out = append(out, e)
	}
	return out
}

func (d *Daemon) current(ctx context.Context) map[string]api.Event {
	m := map[string]api.Event{}
	l, _ := d.List(ctx)
	now := time.Now().UTC()
	for _, s := range l {
		m[s.Name] = api.Event{Time: now, Name: s.Name, Status: s.Status, Reason: s.Reason}
	}
	return m
}

// kick re-derives status now and publishes changes.
func (d *Daemon) kick() {
	d.subMu.Lock()
	defer d.subMu.Unlock()
	cur := d.current(context.Background())
	if d.last != nil {
		for n, e := range cur {
			if o, ok := d.last[n]; !ok || o.Status != e.Status || o.Reason != e.Reason {
				d.publishLocked(e)
			}
		}
		for n, o := range d.last {
			if _, ok := cur[n]; !ok {
				d.publishLocked(api.Event{Time: time.Now().UTC(), Name: o.Name, Removed: true})
			}
		}
	}
	d.last = cur
}

func (d *Daemon) publishLocked(e api.Event) {
	for ch := range d.subs {
		select {
		case ch <- e:
		default: // a slow subscriber loses events rather than blocking the daemon
		}
	}
}

func (d *Daemon) poll(ctx context.Context) {
	t := time.NewTicker(d.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.subMu.Lock()
			n := len(d.subs)
			d.subMu.Unlock()
			if n > 0 {
				d.kick()
			}
		}
	}
}

var (
	_ api.Service     = (*Daemon)(nil)
	_ api.ExecHandoff = (*Daemon)(nil)
)

// listenPrivate listens on a unix socket that only this user can use.
func listenPrivate(path string) (net.Listener, error) {
	restore := privateUmask()
	ln, err := net.Listen("unix", path)
	restore()
	if err != nil {
		return nil, err
	}
	os.Chmod(path, 0o600)
	return ln, nil
}

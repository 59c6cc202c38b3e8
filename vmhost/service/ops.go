package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/state"
)

// Ops are the `moat service` subcommands over a Manager.
type Ops struct {
	M   Manager
	L   *state.Layout
	Out io.Writer
	// Wait bounds the wait for the daemon to answer or go (default 20 s).
	Wait time.Duration
	// Spec overrides NewSpec (tests).
	Spec *Spec
}

func (o *Ops) wait() time.Duration {
	if o.Wait == 0 {
		return 20 * time.Second
	}
	return o.Wait
}

func (o *Ops) client() *api.Client { return api.NewClient(o.L.DaemonSocket()) }

func version(ctx context.Context, c *api.Client) (*api.VersionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Version(ctx)
}

// HomeMatches reports whether the installed service serves layout l: the
// definition's MOAT_HOME is l's home, or neither sets one.
func HomeMatches(st Status, l *state.Layout) bool {
	if st.Home != "" {
		return samePath(st.Home, l.Home)
	}
	return os.Getenv(state.EnvHome) == ""
}

func samePath(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	if a == b {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// StartInstalled is the CLI's auto-start hook: when a service is installed
// for l's state directory it asks the manager to start it and returns true
// (the caller then waits for the socket); it never starts a daemon itself.
// It returns false with no error when no service is installed (start an
// on-demand daemon), and false with an error when one is installed but the
// manager would not start it (an on-demand daemon is still safe: the
// daemon lock admits one, and a service daemon waits for it to exit).
func StartInstalled(ctx context.Context, l *state.Layout) (bool, error) {
	m, err := NewManager()
	if err != nil {
		return false, nil
	}
	st := m.Status(ctx)
	if !st.Installed || !HomeMatches(st, l) {
		return false, nil
	}
	if st.Running {
		return true, nil // starting, or waiting for a daemon to exit
	}
	if err := m.Start(ctx); err != nil {
		return false, fmt.Errorf("the moat service is installed (%s) but did not start: %w", st.Where, err)
	}
	return true, nil
}

// Install writes the definition, hands over from an on-demand daemon, and
// (re)starts the service. Running sandboxes are not touched: an older
// daemon exits, the new one finds them.
func (o *Ops) Install(ctx context.Context) error {
	var spec Spec
	if o.Spec != nil {
		spec = *o.Spec
	} else {
		var err error
		if spec, err = NewSpec(o.L, o.M.Name()); err != nil {
			return err
		}
	}
	if err := o.L.EnsureHome(); err != nil {
		return err
	}
	before := o.M.Status(ctx)
	if before.Installed && !HomeMatches(before, o.L) {
		fmt.Fprintf(o.Out, "note: the installed service used the state directory %s; it now uses %s\n", orDefault(before.Home), o.L.Home)
	}
	if err := o.M.Install(ctx, spec); err != nil {
		return err
	}
	verb := "installed"
	if before.Installed {
		verb = "updated"
	}
	fmt.Fprintf(o.Out, "%s the %s %s\n  runs: %s\n", verb, before.Kind, before.Where, strings.Join(append([]string{spec.Exe}, spec.Args...), " "))
	c := o.client()
	// An on-demand daemon hands over to the service.
	if v, err := version(ctx, c); err == nil && !(before.Running && before.PID == v.PID) {
		if err := o.handOver(ctx, c, v); err != nil {
			return err
		}
	}
	var err error
	if before.Running {
		err = o.M.Restart(ctx)
	} else {
		err = o.M.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("the service is installed but did not start: %w", err)
	}
	v, err := o.waitUp(ctx, c, before.PID)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "the daemon runs under the service (pid %d, moat %s); it starts at login and restarts if it fails\n", v.PID, v.Version)
	o.printSandboxes(ctx, c, "running sandboxes kept")
	return nil
}

func orDefault(home string) string {
	if home == "" {
		return "(the default)"
	}
	return home
}

// handOver asks a daemon that the service does not own to exit and waits
// for it to release the daemon lock. Sandboxes keep running.
func (o *Ops) handOver(ctx context.Context, c *api.Client, v *api.VersionInfo) error {
	if err := c.Shutdown(ctx); err != nil {
		return fmt.Errorf("ask the running daemon (pid %d) to hand over: %w", v.PID, err)
	}
	deadline := time.Now().Add(o.wait())
	for state.Held(o.L.DaemonLock()) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the running daemon (pid %d) did not exit within %v", v.PID, o.wait())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(o.Out, "stopped the on-demand daemon (pid %d); its sandboxes keep running\n", v.PID)
	return nil
}

// waitUp waits for a daemon other than oldPID to answer.
func (o *Ops) waitUp(ctx context.Context, c *api.Client, oldPID int) (*api.VersionInfo, error) {
	deadline := time.Now().Add(o.wait())
	var last error
	for {
		v, err := version(ctx, c)
		if err == nil && (oldPID == 0 || v.PID != oldPID) {
			return v, nil
		}
		last = err
		if time.Now().After(deadline) {
			st := o.M.Status(ctx)
			return nil, fmt.Errorf("the service did not answer on %s within %v (manager says %q; %v); see %s", o.L.DaemonSocket(), o.wait(), st.State, last, o.L.DaemonLog())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (o *Ops) waitDown(ctx context.Context, c *api.Client) error {
	deadline := time.Now().Add(o.wait())
	for {
		if _, err := version(ctx, c); err != nil && !state.Held(o.L.DaemonLock()) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon still answers on %s after %v", o.L.DaemonSocket(), o.wait())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (o *Ops) printSandboxes(ctx context.Context, c *api.Client, label string) {
	l, err := c.List(ctx)
	if err != nil {
		return
	}
	var run []string
	for _, s := range l {
		if s.Status == api.StatusRunning || s.Status == api.StatusStarting {
			run = append(run, s.Name)
		}
	}
	if len(run) > 0 {
		fmt.Fprintf(o.Out, "%s: %s\n", label, strings.Join(run, ", "))
	}
}

// Uninstall stops the service's daemon and removes the definition;
// sandboxes, templates and state stay.
func (o *Ops) Uninstall(ctx context.Context) error {
	st := o.M.Status(ctx)
	if !st.Installed {
		fmt.Fprintf(o.Out, "the moat service is not installed (%s %s)\n", st.Kind, st.Where)
		return nil
	}
	c := o.client()
	var n, running int
	if l, err := c.List(ctx); err == nil {
		n = len(l)
		for _, s := range l {
			if s.Status == api.StatusRunning || s.Status == api.StatusStarting {
				running++
			}
		}
	}
	if err := o.M.Uninstall(ctx); err != nil {
		return err
	}
	if st.Running {
		fmt.Fprintf(o.Out, "removed the %s %s; its daemon stopped\n", st.Kind, st.Where)
	} else {
		fmt.Fprintf(o.Out, "removed the %s %s\n", st.Kind, st.Where)
	}
	fmt.Fprintf(o.Out, "sandboxes, their disks and templates are kept in %s", o.L.Home)
	if n > 0 {
		fmt.Fprintf(o.Out, " (%d sandboxes; %d running, and they keep running)", n, running)
	}
	fmt.Fprintf(o.Out, "; the next moat command starts a daemon on demand again\n")
	fmt.Fprintf(o.Out, "to remove them:\n  moat rm -f $(moat ls -q)   # every sandbox and its disk\n  moat reset                 # all of Moat's sandboxes and state\n")
	return nil
}

// Start starts the service and waits for the daemon to answer.
func (o *Ops) Start(ctx context.Context) error {
	st := o.M.Status(ctx)
	if !st.Installed {
		return ErrNotInstalled
	}
	c := o.client()
	if v, err := version(ctx, c); err == nil && !(st.Running && st.PID == v.PID) {
		if err := o.handOver(ctx, c, v); err != nil {
			return err
		}
	}
	if err := o.M.Start(ctx); err != nil {
		return err
	}
	v, err := o.waitUp(ctx, c, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "the daemon runs under the service (pid %d)\n", v.PID)
	return nil
}

// Stop stops the service's daemon; sandboxes keep running.
func (o *Ops) Stop(ctx context.Context) error {
	if st := o.M.Status(ctx); !st.Installed {
		return ErrNotInstalled
	}
	if err := o.M.Stop(ctx); err != nil {
		return err
	}
	if err := o.waitDown(ctx, o.client()); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "stopped the daemon; sandboxes keep running (the next moat command or login starts the service again)\n")
	return nil
}

// Restart restarts the service's daemon; sandboxes keep running.
func (o *Ops) Restart(ctx context.Context) error {
	st := o.M.Status(ctx)
	if !st.Installed {
		return ErrNotInstalled
	}
	c := o.client()
	old := 0
	if v, err := version(ctx, c); err == nil {
		old = v.PID
		if !(st.Running && st.PID == v.PID) {
			if err := o.handOver(ctx, c, v); err != nil {
				return err
			}
		}
	}
	if err := o.M.Restart(ctx); err != nil {
		return err
	}
	v, err := o.waitUp(ctx, c, old)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "restarted the daemon (pid %d); sandboxes keep running\n", v.PID)
	o.printSandboxes(ctx, c, "running sandboxes")
	return nil
}

// Status prints whether the service is installed (and where), what the
// manager says, the daemon's pid, version and socket, and the sandboxes.
func (o *Ops) Status(ctx context.Context) error {
	st := o.M.Status(ctx)
	w := o.Out
	if st.Installed {
		fmt.Fprintf(w, "service:    installed: %s %s\n", st.Kind, st.Where)
		if !HomeMatches(st, o.L) {
			fmt.Fprintf(w, "            (for the state directory %s, not this one)\n", orDefault(st.Home))
		}
		switch {
		case st.Err != nil:
			fmt.Fprintf(w, "manager:    cannot ask: %v\n", st.Err)
		case st.PID > 0:
			fmt.Fprintf(w, "manager:    %s, pid %d\n", st.State, st.PID)
		default:
			fmt.Fprintf(w, "manager:    %s\n", st.State)
		}
	} else {
		fmt.Fprintf(w, "service:    not installed (%s %s); the CLI starts a daemon on demand; `moat service install` installs it\n", st.Kind, st.Where)
	}
	c := o.client()
	v, err := version(ctx, c)
	if err != nil {
		fmt.Fprintf(w, "daemon:     not running\n")
	} else {
		how := "started on demand"
		if st.Installed && st.Running && st.PID == v.PID {
			how = "under the service"
		}
		fmt.Fprintf(w, "daemon:     running, pid %d, moat %s (API v%d), %s, since %s\n", v.PID, v.Version, v.API, how, v.StartedAt.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "socket:     %s\n", o.L.DaemonSocket())
	fmt.Fprintf(w, "log:        %s\n", o.L.DaemonLog())
	if err != nil {
		return nil
	}
	l, err := c.List(ctx)
	if err != nil {
		fmt.Fprintf(w, "sandboxes:  cannot list: %v\n", err)
		return nil
	}
	var run []string
	for _, s := range l {
		if s.Status == api.StatusRunning {
			run = append(run, s.Name)
		}
	}
	fmt.Fprintf(w, "sandboxes:  %d, %d running", len(l), len(run))
	if len(run) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(run, ", "))
	}
	fmt.Fprintln(w)
	return nil
}

// IsNotInstalled reports whether err is ErrNotInstalled.
func IsNotInstalled(err error) bool { return errors.Is(err, ErrNotInstalled) }

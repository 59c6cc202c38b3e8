package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moatsandbox/moat/vmhost/state"
)

// Systemd manages the systemd user unit with `systemctl --user`.
type Systemd struct {
	Dir string // unit directory (SystemdUnitDir)
	Run Runner
}

func (m *Systemd) Name() string     { return "systemd" }
func (m *Systemd) UnitPath() string { return filepath.Join(m.Dir, SystemdUnitName) }

func (m *Systemd) systemctl(ctx context.Context, args ...string) (string, error) {
	out, err := m.Run(ctx, "systemctl", append([]string{"--user"}, args...)...)
	if err != nil && noUserManager(out, err) {
		return out, fmt.Errorf("%w: %v", errNoUserManager, err)
	}
	return out, err
}

var errNoUserManager = errors.New("`systemctl --user` cannot reach a systemd user manager for this session")

func noUserManager(out string, err error) bool {
	if errors.Is(err, exec.ErrNotFound) {
		return true
	}
	s := out + " " + err.Error()
	for _, w := range []string{"Failed to connect to bus", "No medium found", "$DBUS_SESSION_BUS_ADDRESS", "executable file not found", "System has not been booted with systemd"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func (m *Systemd) Install(ctx context.Context, s Spec) error {
	unit, err := SystemdUnit(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", m.Dir, err)
	}
	if err := state.WriteFileAtomic(m.UnitPath(), []byte(unit), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", m.UnitPath(), err)
	}
	if _, err := m.systemctl(ctx, "daemon-reload"); err != nil {
		return m.offline(err)
	}
	if _, err := m.systemctl(ctx, "enable", SystemdUnitName); err != nil {
		return m.offline(err)
	}
	return nil
}

// offline explains a unit that is written but could not be registered.
func (m *Systemd) offline(err error) error {
	if errors.Is(err, errNoUserManager) {
		return fmt.Errorf("wrote %s, but %v; log in to a systemd session and run `systemctl --user daemon-reload && systemctl --user enable --now %s`", m.UnitPath(), err, SystemdUnitName)
	}
	return fmt.Errorf("wrote %s, but: %w", m.UnitPath(), err)
}

func (m *Systemd) Uninstall(ctx context.Context) error {
	if _, err := os.Stat(m.UnitPath()); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, serr := m.systemctl(ctx, "disable", "--now", SystemdUnitName)
	if err := os.Remove(m.UnitPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if serr == nil {
		m.systemctl(ctx, "daemon-reload")
		m.systemctl(ctx, "reset-failed", SystemdUnitName)
		return nil
	}
	if errors.Is(serr, errNoUserManager) {
		return nil // nothing can be running under a manager that is not there
	}
	return fmt.Errorf("removed %s, but: %w", m.UnitPath(), serr)
}

func (m *Systemd) action(ctx context.Context, verb string) error {
	if _, err := os.Stat(m.UnitPath()); err != nil {
		return ErrNotInstalled
	}
	_, err := m.systemctl(ctx, verb, SystemdUnitName)
	return err
}

func (m *Systemd) Start(ctx context.Context) error   { return m.action(ctx, "start") }
func (m *Systemd) Stop(ctx context.Context) error    { return m.action(ctx, "stop") }
func (m *Systemd) Restart(ctx context.Context) error { return m.action(ctx, "restart") }

func (m *Systemd) Status(ctx context.Context) Status {
	st := Status{Kind: "systemd user unit", Where: m.UnitPath()}
	b, err := os.ReadFile(m.UnitPath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			st.Err = err
		}
		return st
	}
	st.Installed = true
	st.Home = systemdEnvHome(string(b))
	out, err := m.systemctl(ctx, "show", SystemdUnitName, "--property=ActiveState,SubState,MainPID")
	if err != nil {
		st.Err = err
		return st
	}
	p := parseProperties(out)
	st.State = p["ActiveState"]
	if sub := p["SubState"]; sub != "" && sub != st.State {
		st.State += " (" + sub + ")"
	}
	st.Running = p["ActiveState"] == "active" || p["ActiveState"] == "reloading"
	st.PID, _ = strconv.Atoi(p["MainPID"])
	return st
}

// parseProperties parses `systemctl show` KEY=VALUE lines.
func parseProperties(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

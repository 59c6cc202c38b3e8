package service

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parseUnit splits a unit file into section -> key -> values.
func parseUnit(t *testing.T, s string) map[string]map[string][]string {
	t.Helper()
	m := map[string]map[string][]string{}
	sec := ""
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			sec = strings.Trim(line, "[]")
			m[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || sec == "" {
				t.Fatalf("bad unit line %q", line)
			}
			m[sec][k] = append(m[sec][k], v)
		}
	}
	return m
}

func TestSystemdUnitFields(t *testing.T) {
	u, err := SystemdUnit(Spec{
		Exe:  "/opt/moat/bin/moat",
		Args: []string{"vmhost"},
		Env:  map[string]string{"MOAT_HOME": "/home/u/.moat", EnvManager: "systemd"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := parseUnit(t, u)
	want := map[string]map[string][]string{
		"Unit": {
			"Description":   {"Moat VM host"},
			"Documentation": {"https://github.com/moatsandbox/moat"},
		},
		"Service": {
			"Type":           {"simple"},
			"ExecStart":      {"/opt/moat/bin/moat vmhost"},
			"Environment":    {`"MOAT_HOME=/home/u/.moat"`, `"MOAT_SERVICE_MANAGER=systemd"`},
			"Restart":        {"on-failure"},
			"RestartSec":     {"2s"},
			"KillMode":       {"process"},
			"TimeoutStopSec": {"20s"},
		},
		"Install": {
			"WantedBy": {"default.target"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unit:\n%s\ngot  %v\nwant %v", u, got, want)
	}
	if h := systemdEnvHome(u); h != "/home/u/.moat" {
		t.Errorf("systemdEnvHome = %q", h)
	}
}

func TestSystemdUnitNoHome(t *testing.T) {
	u, err := SystemdUnit(Spec{Exe: "/usr/bin/moat", Args: []string{"vmhost"}, Env: map[string]string{EnvManager: "systemd"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, "MOAT_HOME") || systemdEnvHome(u) != "" {
		t.Errorf("MOAT_HOME in a unit whose spec has none:\n%s", u)
	}
}

func TestSystemdQuoting(t *testing.T) {
	u, err := SystemdUnit(Spec{
		Exe:  `/home/a b/100%/$x/"q"\moat`,
		Args: []string{"vmhost"},
		Env:  map[string]string{"MOAT_HOME": `/s p/a%b/$HOME/"q"\z`},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := parseUnit(t, u)["Service"]
	if e := got["ExecStart"][0]; e != `"/home/a b/100%%/$$x/\"q\"\\moat" vmhost` {
		t.Errorf("ExecStart=%s", e)
	}
	if e := got["Environment"][0]; e != `"MOAT_HOME=/s p/a%%b/$HOME/\"q\"\\z"` {
		t.Errorf("Environment=%s", e)
	}
	if h := systemdEnvHome(u); h != `/s p/a%b/$HOME/"q"\z` {
		t.Errorf("systemdEnvHome = %q", h)
	}
	if _, err := SystemdUnit(Spec{Exe: "/x", Env: map[string]string{"MOAT_HOME": "a\nb"}}); err == nil {
		t.Error("a newline in a value was accepted")
	}
	if _, err := SystemdUnit(Spec{Exe: "moat"}); err == nil {
		t.Error("a relative ExecStart was accepted")
	}
}

func TestSystemdUnitDir(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/xdg/conf")
	if d, _ := SystemdUnitDir(); d != "/xdg/conf/systemd/user" {
		t.Errorf("with XDG_CONFIG_HOME: %s", d)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative") // ignored, as the XDG spec says
	t.Setenv("HOME", "/home/u")
	if d, _ := SystemdUnitDir(); d != "/home/u/.config/systemd/user" {
		t.Errorf("without XDG_CONFIG_HOME: %s", d)
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze --user verify` on the
// generated unit (it needs no running systemd, only a runtime directory).
// The binary path has a space and a percent sign, and must exist: verify
// checks that ExecStart is executable.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	binDir := filepath.Join(dir, "my bin 100%")
	os.MkdirAll(binDir, 0o755)
	exe := filepath.Join(binDir, "moat")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := SystemdUnit(Spec{Exe: exe, Args: []string{"vmhost"}, Env: map[string]string{"MOAT_HOME": filepath.Join(dir, "state dir"), EnvManager: "systemd"}})
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, SystemdUnitName)
	os.WriteFile(unit, []byte(u), 0o644)
	rt := filepath.Join(dir, "rt")
	os.Mkdir(rt, 0o700)
	for _, mode := range [][]string{{"--user"}, {}} {
		cmd := exec.Command(sa, append(mode, "verify", unit)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "SYSTEMD_LOG_COLOR=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		// Any output is a warning (an unknown key or a bad value only warns).
		if err != nil || strings.TrimSpace(out.String()) != "" {
			t.Errorf("systemd-analyze %v verify: %v\n%s\nunit:\n%s", mode, err, out.String(), u)
		}
	}
	// The check has teeth: a bad value is reported.
	bad := strings.Replace(u, "KillMode=process", "KillMode=bogus", 1)
	os.WriteFile(unit, []byte(bad), 0o644)
	cmd := exec.Command(sa, "--user", "verify", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt)
	if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "bogus") {
		t.Errorf("systemd-analyze did not flag KillMode=bogus: %s", out)
	}
}

// fakeRunner records commands and answers from a table.
type fakeRunner struct {
	calls   []string
	answers map[string]fakeAnswer
}

type fakeAnswer struct {
	out string
	err error
}

func (f *fakeRunner) run(ctx context.Context, name string, args ...string) (string, error) {
	c := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, c)
	if a, ok := f.answers[c]; ok {
		return a.out, a.err
	}
	return "", nil
}

func TestSystemdManager(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "systemd", "user")
	f := &fakeRunner{answers: map[string]fakeAnswer{
		"systemctl --user show moat-vmhost.service --property=ActiveState,SubState,MainPID": {out: "MainPID=4242\nActiveState=active\nSubState=running\n"},
	}}
	m := &Systemd{Dir: dir, Run: f.run}
	ctx := context.Background()
	if st := m.Status(ctx); st.Installed || st.Where != filepath.Join(dir, SystemdUnitName) {
		t.Fatalf("status before install: %+v", st)
	}
	if err := m.Start(ctx); !IsNotInstalled(err) {
		t.Fatalf("start before install: %v", err)
	}
	spec := Spec{Exe: "/usr/bin/moat", Args: []string{"vmhost"}, Env: map[string]string{"MOAT_HOME": "/h"}}
	if err := m.Install(ctx, spec); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(m.UnitPath())
	if want, _ := SystemdUnit(spec); err != nil || string(b) != want {
		t.Fatalf("unit file: %v\n%s", err, b)
	}
	// Reinstalling (an upgrade) overwrites it.
	spec.Exe = "/usr/local/bin/moat"
	if err := m.Install(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(m.UnitPath()); !strings.Contains(string(b), "ExecStart=/usr/local/bin/moat vmhost") {
		t.Fatalf("reinstall did not rewrite the unit:\n%s", b)
	}
	st := m.Status(ctx)
	if !st.Installed || st.Home != "/h" || !st.Running || st.PID != 4242 || st.State != "active (running)" {
		t.Fatalf("status: %+v", st)
	}
	m.Restart(ctx)
	m.Stop(ctx)
	if err := m.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.UnitPath()); !os.IsNotExist(err) {
		t.Fatalf("unit left after uninstall: %v", err)
	}
	want := []string{
		"systemctl --user daemon-reload",
		"systemctl --user enable moat-vmhost.service",
		"systemctl --user daemon-reload",
		"systemctl --user enable moat-vmhost.service",
		"systemctl --user show moat-vmhost.service --property=ActiveState,SubState,MainPID",
		"systemctl --user restart moat-vmhost.service",
		"systemctl --user stop moat-vmhost.service",
		"systemctl --user disable --now moat-vmhost.service",
		"systemctl --user daemon-reload",
		"systemctl --user reset-failed moat-vmhost.service",
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestSystemdManagerNoUserManager(t *testing.T) {
	dir := t.TempDir()
	f := &fakeRunner{answers: map[string]fakeAnswer{
		"systemctl --user daemon-reload": {out: "Failed to connect to bus: No medium found", err: errors.New("exit status 1")},
	}}
	m := &Systemd{Dir: dir, Run: f.run}
	err := m.Install(context.Background(), Spec{Exe: "/usr/bin/moat", Args: []string{"vmhost"}})
	if err == nil || !strings.Contains(err.Error(), "wrote "+m.UnitPath()) || !strings.Contains(err.Error(), "enable --now") {
		t.Fatalf("install without a user manager: %v", err)
	}
	if _, err := os.Stat(m.UnitPath()); err != nil {
		t.Fatal("the unit should be written anyway (it starts at the next login once enabled)")
	}
}

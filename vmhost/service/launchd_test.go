package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLaunchdPlistFields(t *testing.T) {
	b, err := LaunchdPlist(Spec{
		Exe:     "/Applications/Moat.app/Contents/MacOS/moat",
		Args:    []string{"vmhost"},
		Env:     map[string]string{"MOAT_HOME": "/Users/u/a & <b>", EnvManager: "launchd"},
		LogPath: "/Users/u/Library/Application Support/Moat/vmhost.log",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, `<?xml version="1.0" encoding="UTF-8"?>`) || !strings.Contains(s, `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`) || !strings.Contains(s, `<plist version="1.0">`) {
		t.Errorf("plist header:\n%s", s)
	}
	got, err := parsePlist(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	want := map[string]any{
		"Label":            "com.moatsandbox.vmhost",
		"ProgramArguments": []any{"/Applications/Moat.app/Contents/MacOS/moat", "vmhost"},
		"EnvironmentVariables": map[string]any{
			"MOAT_HOME":            "/Users/u/a & <b>",
			"MOAT_SERVICE_MANAGER": "launchd",
		},
		"RunAtLoad":           true,
		"KeepAlive":           map[string]any{"SuccessfulExit": false},
		"AbandonProcessGroup": true,
		"ProcessType":         "Background",
		"WorkingDirectory":    "/",
		"StandardOutPath":     "/Users/u/Library/Application Support/Moat/vmhost.log",
		"StandardErrorPath":   "/Users/u/Library/Application Support/Moat/vmhost.log",
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s = %#v, want %#v", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected key %s", k)
			}
		}
		t.Logf("plist:\n%s", s)
	}
	if _, err := LaunchdPlist(Spec{Exe: "moat"}); err == nil {
		t.Error("a relative program was accepted")
	}
}

func TestLaunchAgentPath(t *testing.T) {
	t.Setenv("HOME", "/Users/u")
	if p, _ := LaunchAgentPath(); p != "/Users/u/Library/LaunchAgents/com.moatsandbox.vmhost.plist" {
		t.Errorf("path %s", p)
	}
}

// A trimmed `launchctl print gui/501/com.moatsandbox.vmhost` (macOS 14).
const launchctlPrint = `gui/501/com.moatsandbox.vmhost = {
	active count = 1
	path = /Users/u/Library/LaunchAgents/com.moatsandbox.vmhost.plist
	type = LaunchAgent
	state = running

	program = /usr/local/bin/moat
	arguments = {
		/usr/local/bin/moat
		vmhost
	}

	environment = {
		MOAT_SERVICE_MANAGER => launchd
	}

	pid = 812
	immediate reason = speculative
	last exit code = (never exited)
	spawn type = daemon (3)
	properties = keepalive | runatload | inferred program
}
`

func TestParseLaunchctlPrint(t *testing.T) {
	st, pid := parseLaunchctlPrint(launchctlPrint)
	if st != "running" || pid != 812 {
		t.Errorf("state %q pid %d", st, pid)
	}
	st, pid = parseLaunchctlPrint(strings.Replace(strings.Replace(launchctlPrint, "state = running", "state = not running", 1), "\tpid = 812\n", "", 1))
	if st != "not running" || pid != 0 {
		t.Errorf("stopped: state %q pid %d", st, pid)
	}
}

func TestLaunchdManager(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "LaunchAgents", LaunchdLabel+".plist")
	svc := "gui/501/" + LaunchdLabel
	loaded := false
	var calls []string
	run := func(ctx context.Context, name string, args ...string) (string, error) {
		c := strings.Join(append([]string{name}, args...), " ")
		if c != "launchctl print "+svc {
			calls = append(calls, c)
		}
		switch {
		case c == "launchctl print "+svc:
			if !loaded {
				return "Could not find service", errors.New("exit status 113")
			}
			return launchctlPrint, nil
		case c == "launchctl bootstrap gui/501 "+path:
			loaded = true
		case c == "launchctl bootout "+svc:
			loaded = false
		}
		return "", nil
	}
	m := &Launchd{Path: path, UID: 501, Run: run}
	if st := m.Status(ctx); st.Installed {
		t.Fatalf("installed before install: %+v", st)
	}
	if err := m.Start(ctx); !IsNotInstalled(err) {
		t.Fatalf("start before install: %v", err)
	}
	spec := Spec{Exe: "/usr/local/bin/moat", Args: []string{"vmhost"}, Env: map[string]string{"MOAT_HOME": "/h"}}
	if err := m.Install(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "<string>/usr/local/bin/moat</string>") {
		t.Fatalf("plist: %v %s", err, b)
	}
	m.Start(ctx) // not loaded: bootstrap
	st := m.Status(ctx)
	if !st.Installed || !st.Running || st.PID != 812 || st.Home != "/h" {
		t.Fatalf("status: %+v", st)
	}
	m.Start(ctx)   // loaded: kickstart
	m.Restart(ctx) // kickstart -k
	// Upgrade: the loaded job is booted out before the new plist is
	// written (launchd reads it at bootstrap), then started again.
	spec.Exe = "/opt/moat/moat"
	if err := m.Install(ctx, spec); err != nil {
		t.Fatal(err)
	}
	m.Start(ctx)
	m.Stop(ctx)
	if err := m.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("plist left after uninstall")
	}
	want := []string{
		"launchctl bootstrap gui/501 " + path,
		"launchctl kickstart " + svc,
		"launchctl kickstart -k " + svc,
		"launchctl bootout " + svc,
		"launchctl bootstrap gui/501 " + path,
		"launchctl bootout " + svc,
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range calls {
		if strings.Contains(c, " load") || strings.Contains(c, "unload") {
			t.Errorf("legacy launchctl subcommand: %s", c)
		}
	}
}

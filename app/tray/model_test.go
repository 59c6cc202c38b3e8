package tray

import (
	"strings"
	"testing"
)

func labels(items []Item) []string {
	var out []string
	for _, it := range items {
		if it.Separator {
			out = append(out, "---")
		} else {
			out = append(out, it.Label)
		}
	}
	return out
}

func TestEmptyMenu(t *testing.T) {
	m := Build(State{})
	want := []string{"Run Claude in folder…", "---", "No sandboxes yet", "---", "Open Moat", "Log in…", "---", "Quit"}
	if got := labels(m.Items); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	if m.Icon != IconIdle || m.Title != "" || m.Tooltip != "Moat: no sandbox running" {
		t.Errorf("icon %v title %q tooltip %q", m.Icon, m.Title, m.Tooltip)
	}
	if it, _ := m.Find(RunInFolder); !it.Enabled {
		t.Error("run disabled")
	}
	if m.Items[2].ID != "" || m.Items[2].Enabled {
		t.Error("placeholder must not be clickable")
	}
}

func TestSandboxesAndBadges(t *testing.T) {
	m := Build(State{LoggedIn: true, Sandboxes: []Sandbox{
		{Name: "shell-b", Status: Stopped, Workspace: "/w/b"},
		{Name: "claude-a", Status: Running, Workspace: "/w/a"},
		{Name: "claude-c", Status: Error, Reason: "the VM exited: kvm unavailable", Workspace: "/w/c"},
		{Name: "claude-d", Status: Starting, Reason: "boot"},
		{Name: "claude-e", Status: Running},
	}})
	got := labels(m.Items)
	want := []string{"Run Claude in folder…", "---",
		"claude-a — running", "claude-c — error: the VM exited: kvm unavailable", "claude-d — starting", "claude-e — running", "shell-b — stopped",
		"---", "Open Moat", "Log out", "---", "Quit"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	badges := map[string]Badge{}
	for _, it := range m.Items[2:7] {
		badges[strings.Fields(it.Label)[0]] = it.Badge
	}
	if badges["claude-a"] != BadgeRunning || badges["claude-c"] != BadgeError || badges["claude-d"] != BadgeStarting || badges["shell-b"] != BadgeStopped {
		t.Errorf("badges %v", badges)
	}
	if m.Icon != IconError || m.Running != 2 || m.Title != "2" || m.Tooltip != "Moat: 2 sandboxes running, 1 with errors" {
		t.Errorf("icon %v running %d title %q tip %q", m.Icon, m.Running, m.Title, m.Tooltip)
	}
	// submenus
	sub := labels(m.Items[2].Children)
	if strings.Join(sub, "|") != "Open in terminal|Stop|Reveal folder|---|Remove…" {
		t.Errorf("running submenu %q", sub)
	}
	if sub := labels(m.Items[6].Children); strings.Join(sub, "|") != "Open in terminal|Start|Reveal folder|---|Remove…" {
		t.Errorf("stopped submenu %q", sub)
	}
	d := m.Items[4].Children // starting: nothing but Stop (disabled) and reveal
	for _, it := range d {
		if !it.Separator && it.Enabled && it.Label != "Reveal folder" {
			t.Errorf("starting: %q enabled", it.Label)
		}
	}
	if it, ok := m.Find("sandbox/claude-d/reveal"); !ok || it.Enabled {
		t.Errorf("reveal without workspace: %+v", it)
	}
	if m.Items[3].Tooltip != "the VM exited: kvm unavailable" {
		t.Errorf("tooltip %q", m.Items[3].Tooltip)
	}
}

func TestIconStates(t *testing.T) {
	if m := Build(State{Sandboxes: []Sandbox{{Name: "a", Status: Running}}}); m.Icon != IconRunning || m.Tooltip != "Moat: 1 sandbox running" {
		t.Errorf("%v %q", m.Icon, m.Tooltip)
	}
	if m := Build(State{Sandboxes: []Sandbox{{Name: "a", Status: Stopped}}}); m.Icon != IconIdle {
		t.Error(m.Icon)
	}
	m := Build(State{DaemonError: "cannot start the daemon"})
	if m.Icon != IconError || m.Items[0].Enabled || m.Items[2].Label != "Daemon unavailable: cannot start the daemon" {
		t.Errorf("%+v", m)
	}
}

func TestIDsRoundTrip(t *testing.T) {
	m := Build(State{Sandboxes: []Sandbox{{Name: "claude-my/odd", Status: Running, Workspace: "/x"}, {Name: "s", Status: Stopped, Workspace: "/y"}}})
	var ids []string
	var walk func([]Item)
	walk = func(items []Item) {
		for _, it := range items {
			if it.ID != "" {
				ids = append(ids, it.ID)
			}
			walk(it.Children)
		}
	}
	walk(m.Items)
	want := map[string]Intent{
		"run-folder": {Kind: RunInFolder}, "open-app": {Kind: OpenWindow}, "login": {Kind: Login}, "quit": {Kind: Quit},
		"sandbox/claude-my/odd/open": {OpenTerm, "claude-my/odd"}, "sandbox/claude-my/odd/stop": {Stop, "claude-my/odd"},
		"sandbox/claude-my/odd/reveal": {Reveal, "claude-my/odd"}, "sandbox/claude-my/odd/remove": {Remove, "claude-my/odd"},
		"sandbox/s/start": {Start, "s"}, "sandbox/s/open": {OpenTerm, "s"}, "sandbox/s/reveal": {Reveal, "s"}, "sandbox/s/remove": {Remove, "s"},
	}
	if len(ids) != len(want) {
		t.Errorf("ids %q", ids)
	}
	for _, id := range ids {
		in, ok := ParseID(id)
		if !ok || in != want[id] {
			t.Errorf("ParseID(%q) = %+v %v, want %+v", id, in, ok, want[id])
		}
	}
	for _, bad := range []string{"", "sandbox/", "sandbox/x", "sandbox/x/explode", "nope"} {
		if _, ok := ParseID(bad); ok {
			t.Errorf("ParseID(%q) ok", bad)
		}
	}
}

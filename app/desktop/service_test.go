package desktop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	vmservice "github.com/moatsandbox/moat/vmhost/service"
	"github.com/moatsandbox/moat/vmhost/state"
)

// fakeService is Service without a service manager.
type fakeService struct {
	mu         sync.Mutex
	st         vmservice.Status
	ours       bool
	err        error // Status: no manager here
	installErr error
	installs   int
}

func (f *fakeService) Status(context.Context) (vmservice.Status, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.ours, f.err
}

func (f *fakeService) Install(_ context.Context, out io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.installs++
	fmt.Fprintf(out, "installed the systemd user unit /u/moat-vmhost.service\n")
	if f.installErr != nil {
		return f.installErr
	}
	f.st.Installed, f.st.Running, f.st.State, f.st.PID = true, true, "active", 42
	f.ours = true
	return nil
}

var notInstalled = vmservice.Status{Kind: "systemd user unit", Where: "/u/moat-vmhost.service", State: "inactive"}

func readSettingsJSON(t *testing.T, h *harness) map[string]any {
	t.Helper()
	b, err := os.ReadFile(h.app.cfg.SettingsPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServiceStatusOfferAndDecline(t *testing.T) {
	h := newHarness(t)
	svc := &fakeService{st: notInstalled}
	h.app.cfg.Service = svc
	v, err := h.app.ServiceStatus()
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceView{Supported: true, Detail: "not installed (systemd user unit /u/moat-vmhost.service); the daemon starts on demand"}
	if v != want {
		t.Fatalf("status %+v, want %+v", v, want)
	}
	if err := h.app.DeclineService(); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.app.ServiceStatus(); !v.Offered || v.Installed || !v.Supported {
		t.Fatalf("after decline: %+v", v)
	}
	if m := readSettingsJSON(t, h); m["serviceOffered"] != true {
		t.Errorf("settings.json after decline: %v", m)
	}
	// the file written by the decline still reads as the defaults
	s, err := h.app.GetSettings()
	if err != nil || s != h.app.defaults() {
		t.Errorf("settings after decline %+v, %v; want the defaults", s, err)
	}
	// saving the settings from the window keeps the decline, and the decline keeps the settings
	s.CPUs = 4
	if err := h.app.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.app.ServiceStatus(); !v.Offered {
		t.Error("SaveSettings forgot the decline")
	}
	if err := h.app.DeclineService(); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.app.GetSettings(); got.CPUs != 4 {
		t.Errorf("DeclineService changed the settings: %+v", got)
	}
	if m := readSettingsJSON(t, h); m["serviceOffered"] != true || m["cpus"] != 4.0 || m["terminal"] != "xterm" {
		t.Errorf("settings.json: %v", m)
	}
	if svc.installs != 0 {
		t.Error("declining installed the service")
	}
}

func TestSaveSettingsWithoutOfferLeavesNoKey(t *testing.T) {
	h := newHarness(t)
	s, _ := h.app.GetSettings()
	if err := h.app.SaveSettings(s); err != nil {
		t.Fatal(err)
	}
	if _, ok := readSettingsJSON(t, h)["serviceOffered"]; ok {
		t.Error("serviceOffered written before the offer was answered")
	}
}

func TestInstallService(t *testing.T) {
	h := newHarness(t)
	var logged []string
	var mu sync.Mutex
	h.app.cfg.Log = func(f string, a ...any) { mu.Lock(); logged = append(logged, fmt.Sprintf(f, a...)); mu.Unlock() }
	svc := &fakeService{st: notInstalled, installErr: errors.New("wrote /u/moat-vmhost.service, but `systemctl --user` cannot reach a systemd user manager for this session")}
	h.app.cfg.Service = svc

	err := h.app.InstallService()
	if err == nil || err.Error() != svc.installErr.Error() {
		t.Fatalf("install error %v, want it as worded", err)
	}
	if v, _ := h.app.ServiceStatus(); v.Offered || v.Installed {
		t.Fatalf("a failed install counts as answered: %+v", v)
	}

	svc.installErr = nil
	if err := h.app.InstallService(); err != nil {
		t.Fatal(err)
	}
	v, err := h.app.ServiceStatus()
	want := ServiceView{Installed: true, Running: true, Offered: true, Supported: true, Detail: "installed (systemd user unit /u/moat-vmhost.service): active, pid 42"}
	if err != nil || v != want {
		t.Fatalf("after install %+v, %v; want %+v", v, err, want)
	}
	if svc.installs != 2 {
		t.Errorf("%d installs", svc.installs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) == 0 || !strings.Contains(logged[len(logged)-1], "installed the systemd user unit") {
		t.Errorf("the install report is not logged: %q", logged)
	}
}

func TestServiceStatusUnsupportedAndOtherHome(t *testing.T) {
	h := newHarness(t)
	// no Service configured
	if err := h.app.InstallService(); !errors.Is(err, errNoService) {
		t.Errorf("install without a service: %v", err)
	}
	if v, err := h.app.ServiceStatus(); err != nil || v.Supported || v.Detail != errNoService.Error() {
		t.Errorf("no service: %+v, %v", v, err)
	}
	// a platform without a service manager
	h.app.cfg.Service = &fakeService{err: errors.New("moat service is not supported on this platform")}
	if v, _ := h.app.ServiceStatus(); v.Supported || v.Installed || v.Detail != "moat service is not supported on this platform" {
		t.Errorf("unsupported: %+v", v)
	}
	// installed, but for another state directory: not ours, so offered again
	h.app.cfg.Service = &fakeService{st: vmservice.Status{Kind: "launchd agent", Where: "/p.plist", Installed: true, Running: true, Home: "/other"}}
	v, _ := h.app.ServiceStatus()
	if !v.Supported || v.Installed || v.Running || !strings.Contains(v.Detail, "for another state directory (/other)") {
		t.Errorf("other home: %+v", v)
	}
	// the manager cannot be asked
	h.app.cfg.Service = &fakeService{ours: true, st: vmservice.Status{Kind: "systemd user unit", Where: "/u", Installed: true, Err: errors.New("no bus")}}
	if v, _ := h.app.ServiceStatus(); !v.Installed || v.Running || v.Detail != "installed (systemd user unit /u); cannot ask the service manager: no bus" {
		t.Errorf("cannot ask: %+v", v)
	}
}

func TestServiceStatusBadSettings(t *testing.T) {
	h := newHarness(t)
	h.app.cfg.Service = &fakeService{st: notInstalled}
	if err := os.WriteFile(h.app.cfg.SettingsPath, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.ServiceStatus(); err == nil || !strings.Contains(err.Error(), "is not valid JSON") {
		t.Errorf("status with a broken settings.json: %v", err)
	}
	if err := h.app.DeclineService(); err == nil {
		t.Error("decline overwrote a broken settings.json")
	}
}

// fakeManager is a vmservice.Manager that records calls.
type fakeManager struct {
	st         vmservice.Status
	installed  []vmservice.Spec
	installErr error
}

func (m *fakeManager) Name() string { return "fake" }
func (m *fakeManager) Install(_ context.Context, s vmservice.Spec) error {
	m.installed = append(m.installed, s)
	return m.installErr
}
func (m *fakeManager) Uninstall(context.Context) error         { return nil }
func (m *fakeManager) Start(context.Context) error             { return nil }
func (m *fakeManager) Stop(context.Context) error              { return nil }
func (m *fakeManager) Restart(context.Context) error           { return nil }
func (m *fakeManager) Status(context.Context) vmservice.Status { return m.st }

// NewService goes through vmhost/service: HomeMatches for Status, Ops.Install for Install.
func TestOpsService(t *testing.T) {
	home := t.TempDir()
	l, err := state.New(home, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(l.Runtime) })
	ctx := context.Background()

	s := NewService(l).(*opsService)
	m := &fakeManager{st: vmservice.Status{Kind: "test service", Where: "/test", Installed: true, Running: true, Home: home}}
	s.newManager = func() (vmservice.Manager, error) { return m, nil }
	if st, ours, err := s.Status(ctx); err != nil || !ours || !st.Running {
		t.Errorf("status %+v ours=%v err=%v", st, ours, err)
	}
	m.st.Home = t.TempDir()
	if _, ours, _ := s.Status(ctx); ours {
		t.Error("a service for another state directory counts as ours")
	}

	spec := vmservice.Spec{Exe: "/opt/moat/bin/moat", Args: []string{"vmhost"}}
	s.spec = &spec
	m.installErr = errors.New("permission denied")
	var out strings.Builder
	if err := s.Install(ctx, &out); err == nil || err.Error() != "permission denied" {
		t.Errorf("install: %v", err)
	}
	if len(m.installed) != 1 || m.installed[0].Exe != spec.Exe {
		t.Errorf("manager installs %+v", m.installed)
	}

	s.newManager = func() (vmservice.Manager, error) { return nil, errors.New("not here") }
	if _, _, err := s.Status(ctx); err == nil {
		t.Error("status without a manager")
	}
	if err := s.Install(ctx, &out); err == nil || err.Error() != "not here" {
		t.Errorf("install without a manager: %v", err)
	}
}

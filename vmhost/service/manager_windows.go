package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	ks "github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/moatsandbox/moat/vmhost/state"
)

// Windows manages the SCM service through github.com/kardianos/service,
// plus golang.org/x/sys/windows/svc/mgr for what the library lacks
// (updating an installed service in place, the daemon's pid).
type Windows struct{}

func newPlatformManager() (Manager, error) { return &Windows{}, nil }

func elevated() bool { return windows.GetCurrentProcessToken().IsElevated() }

// errElevation is the message of every change to the service without
// administrator rights.
func errElevation(verb string) error {
	return fmt.Errorf("%s the Moat VM host service needs administrator rights (Hyper-V's HCS only serves elevated processes, so the VM host is a system service): open an elevated prompt (right-click Terminal or PowerShell > Run as administrator) and run `moat service %s` there", verbing(verb), verb)
}

func verbing(v string) string {
	switch v {
	case "install":
		return "installing"
	case "uninstall":
		return "uninstalling"
	case "start":
		return "starting"
	case "stop":
		return "stopping"
	case "restart":
		return "restarting"
	}
	return v
}

func (m *Windows) Name() string { return "windows" }

type nopProgram struct{}

func (nopProgram) Start(ks.Service) error { return nil }
func (nopProgram) Stop(ks.Service) error  { return nil }

func (m *Windows) lib(s Spec) (ks.Service, error) {
	return ks.New(nopProgram{}, WindowsConfig(s))
}

func (m *Windows) Install(ctx context.Context, s Spec) error {
	if !elevated() {
		return errElevation("install")
	}
	if _, ok := m.query(); !ok {
		l, err := m.lib(s)
		if err != nil {
			return err
		}
		return l.Install()
	}
	// Update in place (kardianos refuses an existing service).
	mg, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer mg.Disconnect()
	sv, err := mg.OpenService(WindowsName)
	if err != nil {
		return err
	}
	defer sv.Close()
	cfg, err := sv.Config()
	if err != nil {
		return err
	}
	cmd := syscall.EscapeArg(s.Exe)
	for _, a := range s.Args {
		cmd += " " + syscall.EscapeArg(a)
	}
	cfg.BinaryPathName = cmd
	cfg.StartType = mgr.StartAutomatic
	cfg.DisplayName, cfg.Description = DisplayName, Description
	if err := sv.UpdateConfig(cfg); err != nil {
		return err
	}
	return setServiceEnv(s.Env)
}

func setServiceEnv(env map[string]string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+WindowsName, registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	var vs []string
	for key, v := range env {
		vs = append(vs, key+"="+v)
	}
	return k.SetStringsValue("Environment", vs)
}

func serviceEnv() map[string]string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+WindowsName, registry.QUERY_VALUE)
	if err != nil {
		return nil
	}
	defer k.Close()
	vs, _, err := k.GetStringsValue("Environment")
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, v := range vs {
		if a, b, ok := strings.Cut(v, "="); ok {
			m[a] = b
		}
	}
	return m
}

func (m *Windows) Uninstall(ctx context.Context) error {
	if _, ok := m.query(); !ok {
		return nil
	}
	if !elevated() {
		return errElevation("uninstall")
	}
	l, err := m.lib(Spec{})
	if err != nil {
		return err
	}
	l.Stop()
	return l.Uninstall()
}

func (m *Windows) control(verb string, f func(ks.Service) error) error {
	if _, ok := m.query(); !ok {
		return ErrNotInstalled
	}
	l, err := m.lib(Spec{})
	if err != nil {
		return err
	}
	if err := f(l); err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return errElevation(verb)
		}
		return err
	}
	return nil
}

func (m *Windows) Start(ctx context.Context) error {
	return m.control("start", func(l ks.Service) error { return l.Start() })
}
func (m *Windows) Stop(ctx context.Context) error {
	return m.control("stop", func(l ks.Service) error { return l.Stop() })
}
func (m *Windows) Restart(ctx context.Context) error {
	return m.control("restart", func(l ks.Service) error { return l.Restart() })
}

// query reads the service's status with the rights any user has.
func (m *Windows) query() (svc.Status, bool) {
	h, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return svc.Status{}, false
	}
	defer windows.CloseServiceHandle(h)
	name, _ := windows.UTF16PtrFromString(WindowsName)
	sh, err := windows.OpenService(h, name, windows.SERVICE_QUERY_STATUS)
	if err != nil {
		return svc.Status{}, false
	}
	sv := &mgr.Service{Handle: sh, Name: WindowsName}
	defer sv.Close()
	st, err := sv.Query()
	if err != nil {
		return svc.Status{}, true
	}
	return st, true
}

func (m *Windows) Status(ctx context.Context) Status {
	st := Status{Kind: "Windows service", Where: WindowsName}
	q, ok := m.query()
	if !ok {
		return st
	}
	st.Installed = true
	st.Home = serviceEnv()[state.EnvHome]
	switch q.State {
	case svc.Running:
		st.State, st.Running = "running", true
	case svc.Stopped:
		st.State = "stopped"
	case svc.StartPending:
		st.State = "start pending"
	case svc.StopPending:
		st.State = "stop pending"
	default:
		st.State = fmt.Sprintf("state %d", q.State)
	}
	st.PID = int(q.ProcessId)
	return st
}

package desktop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	vmservice "github.com/moatsandbox/moat/vmhost/service"
	"github.com/moatsandbox/moat/vmhost/state"
)

// ServiceView is the VM host service as the first-start offer sees it
// (BINDINGS.md).
type ServiceView struct {
	// Installed: a service is installed for this app's state directory.
	Installed bool `json:"installed"`
	// Running: the service manager runs its daemon.
	Running bool `json:"running"`
	// Offered: the offer was answered (installed or declined) before.
	Offered bool `json:"offered"`
	// Supported: this platform has a service manager moat can drive.
	Supported bool   `json:"supported"`
	Detail    string `json:"detail"`
}

// Service is the VM host service as the app uses it: package vmhost/service
// over this platform's manager (NewService), or a fake in tests.
type Service interface {
	// Status is what the service manager says, and whether the installed
	// definition serves the app's state directory. An error means this
	// platform has no service manager.
	Status(ctx context.Context) (st vmservice.Status, ours bool, err error)
	// Install installs (or updates) the service and starts it, the same
	// code path as `moat service install`; its report goes to out.
	Install(ctx context.Context, out io.Writer) error
}

// NewService is Service over vmhost/service for the state directory l.
func NewService(l *state.Layout) Service {
	return &opsService{l: l, newManager: vmservice.NewManager}
}

type opsService struct {
	l          *state.Layout
	newManager func() (vmservice.Manager, error)
	spec       *vmservice.Spec // tests: instead of this binary
}

func (s *opsService) Status(ctx context.Context) (vmservice.Status, bool, error) {
	m, err := s.newManager()
	if err != nil {
		return vmservice.Status{}, false, err
	}
	st := m.Status(ctx)
	return st, st.Installed && vmservice.HomeMatches(st, s.l), nil
}

func (s *opsService) Install(ctx context.Context, out io.Writer) error {
	m, err := s.newManager()
	if err != nil {
		return err
	}
	return (&vmservice.Ops{M: m, L: s.l, Out: out, Spec: s.spec}).Install(ctx)
}

var errNoService = errors.New("this build of the app cannot install the VM host service; run `moat service install`")

// ServiceStatus says whether the VM host service is installed and running,
// whether the offer to install it was answered, and whether it can be
// installed here.
func (a *App) ServiceStatus() (ServiceView, error) {
	offered, err := a.serviceOffered()
	if err != nil {
		return ServiceView{}, err
	}
	v := ServiceView{Offered: offered}
	if a.cfg.Service == nil {
		v.Detail = errNoService.Error()
		return v, nil
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	st, ours, err := a.cfg.Service.Status(ctx)
	if err != nil {
		v.Detail = err.Error()
		return v, nil
	}
	v.Supported = true
	v.Installed = ours
	v.Running = ours && st.Running
	v.Detail = serviceDetail(st, ours)
	return v, nil
}

func serviceDetail(st vmservice.Status, ours bool) string {
	where := strings.TrimSpace(st.Kind + " " + st.Where)
	switch {
	case !st.Installed:
		return fmt.Sprintf("not installed (%s); the daemon starts on demand", where)
	case !ours:
		home := st.Home
		if home == "" {
			home = "the default"
		}
		return fmt.Sprintf("installed (%s) for another state directory (%s); the daemon starts on demand", where, home)
	case st.Err != nil:
		return fmt.Sprintf("installed (%s); cannot ask the service manager: %v", where, st.Err)
	case st.PID > 0:
		return fmt.Sprintf("installed (%s): %s, pid %d", where, st.State, st.PID)
	case st.State != "":
		return fmt.Sprintf("installed (%s): %s", where, st.State)
	}
	return fmt.Sprintf("installed (%s)", where)
}

// InstallService installs the VM host service and starts it, as `moat
// service install` does, and remembers that the offer was answered.
func (a *App) InstallService() error {
	if a.cfg.Service == nil {
		return errNoService
	}
	a.svcMu.Lock()
	defer a.svcMu.Unlock()
	var out bytes.Buffer
	err := a.cfg.Service.Install(a.ctx, &out)
	if s := strings.TrimSpace(out.String()); s != "" {
		a.cfg.Log("service install: %s", s)
	}
	if err != nil {
		return err
	}
	return a.setServiceOffered()
}

// DeclineService remembers that the user declined the offer.
func (a *App) DeclineService() error { return a.setServiceOffered() }

// serviceOffered reads serviceOffered from settings.json.
func (a *App) serviceOffered() (bool, error) {
	a.smu.Lock()
	defer a.smu.Unlock()
	f, err := a.readSettingsFile()
	return f.ServiceOffered, err
}

// setServiceOffered sets serviceOffered in settings.json, keeping the
// settings as they are (a missing file: the zero Settings, which
// GetSettings reads as the defaults).
func (a *App) setServiceOffered() error {
	a.smu.Lock()
	defer a.smu.Unlock()
	f, err := a.readSettingsFile()
	if err != nil {
		return err
	}
	f.ServiceOffered = true
	return a.writeSettingsFile(f)
}

package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Status is what the service manager says about the moat service.
type Status struct {
	Kind      string // "systemd user unit", "launchd agent", "Windows service"
	Installed bool
	Where     string // the definition file, or the Windows service name
	// Home is the MOAT_HOME the definition sets ("" when it sets none and
	// the daemon uses the default state directory).
	Home string
	// State is the manager's own word ("active", "running", "inactive",
	// "failed", "stopped", ...); "" when it could not be asked.
	State   string
	Running bool
	PID     int // the daemon's pid as the manager knows it (0: none/unknown)
	// Err is why the manager could not be asked (the definition may still
	// be installed).
	Err error
}

// Manager drives one platform's service manager.
type Manager interface {
	// Name is the manager's short name, also EnvManager's value.
	Name() string
	// Install writes (or rewrites) the definition and registers it to
	// start at login/boot. It does not start the daemon.
	Install(ctx context.Context, s Spec) error
	// Uninstall stops the daemon (not the sandboxes) and removes the
	// definition. Not installed is not an error.
	Uninstall(ctx context.Context) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Restart(ctx context.Context) error
	Status(ctx context.Context) Status
}

// ErrNotInstalled is returned by start/stop/restart when no service is
// installed.
var ErrNotInstalled = errors.New("the moat service is not installed (see `moat service install`)")

// Runner runs a command and returns its combined output; a non-zero exit
// is an error that includes the output.
type Runner func(ctx context.Context, name string, args ...string) (string, error)

// ExecRunner runs commands with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if err != nil {
		if s != "" {
			return s, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, s)
		}
		return s, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return s, nil
}

// NewManager returns the manager of this platform.
func NewManager() (Manager, error) {
	switch runtime.GOOS {
	case "linux":
		dir, err := SystemdUnitDir()
		if err != nil {
			return nil, err
		}
		return &Systemd{Dir: dir, Run: ExecRunner}, nil
	case "darwin":
		p, err := LaunchAgentPath()
		if err != nil {
			return nil, err
		}
		return &Launchd{Path: p, UID: os.Getuid(), Run: ExecRunner}, nil
	}
	return newPlatformManager()
}

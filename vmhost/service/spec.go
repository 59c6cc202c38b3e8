package service

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moatsandbox/moat/vmhost/state"
)

// Names of the service on each platform.
const (
	SystemdUnitName = "moat-vmhost.service"
	LaunchdLabel    = "com.moatsandbox.vmhost"
	WindowsName     = "MoatVMHost"
	DisplayName     = "Moat VM host"
	Description     = "Moat per-user daemon: sandbox registry and API; sandboxes run in their own supervisor processes"
)

// EnvManager is set by every service definition to the manager that runs
// the daemon ("systemd", "launchd", "windows"). The daemon uses it to wait
// for another daemon to exit instead of failing (so a service does not
// crash-loop beside an on-demand daemon); status uses it to tell them apart.
const EnvManager = "MOAT_SERVICE_MANAGER"

// Spec is what a service definition is generated from.
type Spec struct {
	Exe  string   // absolute path of the moat binary
	Args []string // arguments, normally ["vmhost"]
	// Env is the daemon's environment: EnvManager, and state.EnvHome when
	// the installing user set it.
	Env map[string]string
	// LogPath receives the daemon's stdout and stderr where the manager
	// redirects them itself (launchd): the daemon log in the state dir.
	LogPath string
}

// NewSpec returns the spec of the daemon for layout l run by manager
// ("systemd", "launchd", "windows"): this very binary, `vmhost`, MOAT_HOME
// passed through when it is set (always on Windows, where the service runs
// as another account whose default state directory would differ).
func NewSpec(l *state.Layout, manager string) (Spec, error) {
	exe, err := Executable()
	if err != nil {
		return Spec{}, err
	}
	env := map[string]string{EnvManager: manager}
	if os.Getenv(state.EnvHome) != "" || manager == "windows" {
		env[state.EnvHome] = l.Home
	}
	return Spec{Exe: exe, Args: []string{"vmhost"}, Env: env, LogPath: l.DaemonLog()}, nil
}

// Executable is the absolute path of this binary for a service definition.
// It prefers the path the user ran it by (os.Args[0], looked up in PATH)
// when that is the same file, symlinks kept: a package manager's
// /usr/local/bin/moat -> ../Cellar/moat/1.2/bin/moat must survive an
// upgrade that removes the versioned directory. It refuses binaries that
// will not be there at the next login (`go run`, go test).
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the moat binary: %w", err)
	}
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil && samePath(abs, exe) {
			exe = abs
		}
	}
	if !filepath.IsAbs(exe) {
		return "", fmt.Errorf("the moat binary path %q is not absolute", exe)
	}
	if isTemporary(exe) {
		return "", fmt.Errorf("%s is a temporary build (go run or go test); install moat somewhere permanent and run `moat service install` from there", exe)
	}
	return exe, nil
}

func isTemporary(exe string) bool {
	return strings.Contains(exe, string(filepath.Separator)+"go-build") && os.Getenv("MOAT_SERVICE_ALLOW_TEMP") == ""
}

// errNotSupported is returned on platforms without a service backend.
var errNotSupported = errors.New("moat service is not supported on this platform")

// Package state is where Moat keeps its files: the per-user state directory,
// one directory per sandbox, the short runtime directory for unix sockets, and
// the name of every file in them — all defined here and nowhere else.
//
// Layout (Home is $MOAT_HOME, else the platform's state directory):
//
//	<Home>/vmhost.sock            daemon API socket (0600)
//	<Home>/vmhost.lock            held by the serving daemon
//	<Home>/vmhost-start.lock      serialises CLI auto-starts of the daemon
//	<Home>/vmhost.log             daemon log
//	<Home>/registry.lock          serialises sandbox creation and removal
//	<Home>/sandboxes/<name>/      one directory per sandbox (see Sandbox)
//	<Home>/templates/             the template store (see Templates)
//	<Runtime>/<id>/               short per-sandbox run directory (sockets)
//
// Runtime is $XDG_RUNTIME_DIR/moat, else <tmp>/moat-<uid>: unix socket paths
// are limited to about 100 bytes, so sockets never live under Home.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// EnvHome overrides the state directory (tests use it).
const EnvHome = "MOAT_HOME"

// File names in Home.
const (
	DaemonSocketName    = "vmhost.sock"
	DaemonLockName      = "vmhost.lock"
	DaemonStartLockName = "vmhost-start.lock"
	DaemonLogName       = "vmhost.log"
	DaemonPIDName       = "vmhost.pid"
	RegistryLockName    = "registry.lock"
	SandboxesDirName    = "sandboxes"
	TemplatesDirName    = "templates"
)

// File names in the template store (vmhost/template).
const (
	TemplateNamesName     = "names.json" // template name -> image digest
	TemplateLockName      = "store.lock" // serialises changes to names.json
	TemplateImagesDirName = "images"     // one directory per image digest
	TemplateTmpDirName    = "tmp"        // downloads and builds in progress
	TemplateDiskName      = "base.ext4"  // read-only root lower layer
	TemplateMetaName      = "image.json" // image metadata
	TemplateFilesName     = "files.gz"   // listing of the flattened filesystem
)

// File names in a sandbox directory.
const (
	RecordName         = "sandbox.json"   // the sandbox record (JSON)
	DataDiskName       = "data.img"       // writable disk
	ConsoleLogName     = "console.log"    // guest serial console
	SupervisorLogName  = "supervisor.log" // supervisor's own log
	SupervisorLockName = "supervisor.lock"
	SupervisorPIDName  = "supervisor.pid"
	OpLockName         = "op.lock"    // serialises start/stop/rm of one sandbox
	LastErrorName      = "last-error" // why the last supervisor failed, if it did
)

// File names in a sandbox's run directory.
const (
	SupervisorSocketName = "sup.sock"
	// HandoffSocketName receives client connections (as file descriptors)
	// for exec sessions that must not depend on the daemon.
	HandoffSocketName = "fd.sock"
	VMRunDirName      = "vm" // handed to the driver as driver.Spec.RunDir
)

// maxSocketPath is the portable limit for a unix socket path (sun_path is
// 104 bytes on macOS, 108 on Linux, including the NUL).
const maxSocketPath = 100

// Layout resolves every path Moat uses.
type Layout struct {
	Home    string
	Runtime string
}

// Default returns the layout for this user and platform.
func Default() (*Layout, error) {
	home, err := homeDir()
	if err != nil {
		return nil, err
	}
	return New(home, "")
}

// New returns a layout rooted at home; runtime "" picks the default short
// runtime root.
func New(home, rt string) (*Layout, error) {
	if !filepath.IsAbs(home) {
		a, err := filepath.Abs(home)
		if err != nil {
			return nil, err
		}
		home = a
	}
	if rt == "" {
		rt = runtimeRoot(home)
	}
	return &Layout{Home: home, Runtime: rt}, nil
}

func homeDir() (string, error) {
	if h := os.Getenv(EnvHome); h != "" {
		return filepath.Abs(h)
	}
	switch runtime.GOOS {
	case "darwin":
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(h, "Library", "Application Support", "Moat"), nil
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "Moat"), nil
		}
		d, err := os.UserConfigDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "Moat"), nil
	default:
		if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "moat"), nil
		}
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find the home directory for Moat's state (set %s): %w", EnvHome, err)
		}
		return filepath.Join(h, ".local", "state", "moat"), nil
	}
}

// runtimeRoot is a short directory for sockets. With MOAT_HOME set it is
// keyed by a hash of home so that separate homes (tests) never share it.
func runtimeRoot(home string) string {
	var base string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && runtime.GOOS == "linux" {
		base = filepath.Join(d, "moat")
	} else {
		base = filepath.Join(os.TempDir(), fmt.Sprintf("moat-%d", os.Getuid()))
		if runtime.GOOS == "windows" {
			base = filepath.Join(os.TempDir(), "moat") // %TEMP% is per user
		}
		if runtime.GOOS == "darwin" {
			// $TMPDIR on macOS is long; /tmp is short and per-boot.
			base = fmt.Sprintf("/tmp/moat-%d", os.Getuid())
		}
	}
	sum := sha256.Sum256([]byte(home))
	return filepath.Join(base, hex.EncodeToString(sum[:4]))
}

// DaemonSocket is the API socket. When Home is too deep for a unix socket
// path, the socket moves to the runtime directory.
func (l *Layout) DaemonSocket() string {
	p := filepath.Join(l.Home, DaemonSocketName)
	if len(p) < maxSocketPath {
		return p
	}
	return filepath.Join(l.Runtime, DaemonSocketName)
}

func (l *Layout) DaemonLock() string      { return filepath.Join(l.Home, DaemonLockName) }
func (l *Layout) DaemonStartLock() string { return filepath.Join(l.Home, DaemonStartLockName) }
func (l *Layout) DaemonLog() string       { return filepath.Join(l.Home, DaemonLogName) }
func (l *Layout) DaemonPID() string       { return filepath.Join(l.Home, DaemonPIDName) }
func (l *Layout) RegistryLock() string    { return filepath.Join(l.Home, RegistryLockName) }
func (l *Layout) SandboxesDir() string    { return filepath.Join(l.Home, SandboxesDirName) }
func (l *Layout) TemplatesDir() string    { return filepath.Join(l.Home, TemplatesDirName) }

// Sandbox returns the paths of one sandbox. id is the record's short ID that
// keys its run directory.
func (l *Layout) Sandbox(name, id string) Sandbox {
	return Sandbox{Dir: filepath.Join(l.SandboxesDir(), name), RunDir: filepath.Join(l.Runtime, id)}
}

// Sandbox holds the paths of one sandbox.
type Sandbox struct {
	Dir    string // persistent: record, disk, logs
	RunDir string // short: sockets
}

func (s Sandbox) Record() string           { return filepath.Join(s.Dir, RecordName) }
func (s Sandbox) DataDisk() string         { return filepath.Join(s.Dir, DataDiskName) }
func (s Sandbox) ConsoleLog() string       { return filepath.Join(s.Dir, ConsoleLogName) }
func (s Sandbox) SupervisorLog() string    { return filepath.Join(s.Dir, SupervisorLogName) }
func (s Sandbox) SupervisorLock() string   { return filepath.Join(s.Dir, SupervisorLockName) }
func (s Sandbox) SupervisorPID() string    { return filepath.Join(s.Dir, SupervisorPIDName) }
func (s Sandbox) OpLock() string           { return filepath.Join(s.Dir, OpLockName) }
func (s Sandbox) LastError() string        { return filepath.Join(s.Dir, LastErrorName) }
func (s Sandbox) SupervisorSocket() string { return filepath.Join(s.RunDir, SupervisorSocketName) }
func (s Sandbox) HandoffSocket() string    { return filepath.Join(s.RunDir, HandoffSocketName) }
func (s Sandbox) VMRunDir() string         { return filepath.Join(s.RunDir, VMRunDirName) }

// EnsureHome creates Home (0700).
func (l *Layout) EnsureHome() error {
	if err := os.MkdirAll(l.SandboxesDir(), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	return nil
}

// EnsureRunDir creates a run directory (and the runtime root) private to
// this user; it refuses a root that someone else owns.
func (l *Layout) EnsureRunDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(l.Runtime), 0o700); err != nil {
		return fmt.Errorf("create runtime directory: %w", err)
	}
	if err := checkOwner(filepath.Dir(l.Runtime)); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create runtime directory: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, and renames it into place.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by write: readers of
// path see the old file or the whole new one, never a part, and a failed
// write leaves no temporary file behind.
func WriteAtomic(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

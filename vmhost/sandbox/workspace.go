package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Workspace is a host folder shared into the sandbox at the same path.
type Workspace struct {
	Path     string `json:"path"` // absolute, symlink-resolved
	ReadOnly bool   `json:"read_only,omitempty"`
}

func (w Workspace) String() string {
	if w.ReadOnly {
		return w.Path + ":ro"
	}
	return w.Path
}

// ParseWorkspace splits an argument with an optional ":ro" (or ":rw")
// suffix and validates the folder (see ValidateWorkspace).
func ParseWorkspace(arg string, force bool) (Workspace, error) {
	w := Workspace{Path: arg}
	switch {
	case strings.HasSuffix(arg, ":ro"):
		w.Path, w.ReadOnly = strings.TrimSuffix(arg, ":ro"), true
	case strings.HasSuffix(arg, ":rw"):
		w.Path = strings.TrimSuffix(arg, ":rw")
	}
	p, err := ValidateWorkspace(w.Path, force)
	if err != nil {
		return Workspace{}, err
	}
	w.Path = p
	return w, nil
}

// ValidateWorkspace returns the absolute, symlink-resolved path of an
// existing directory. The filesystem root and the home directory itself are
// refused unless force is set: an agent with write access to them can change
// everything the user owns.
func ValidateWorkspace(p string, force bool) (string, error) {
	if p == "" {
		return "", fmt.Errorf("workspace path is empty")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", p, err)
	}
	fi, err := os.Stat(abs)
	if os.IsNotExist(err) {
		return "", fmt.Errorf("workspace %s does not exist", abs)
	}
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("workspace %s is not a directory", abs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", abs, err)
	}
	if !force {
		if isRoot(real) {
			return "", fmt.Errorf("refusing to share the filesystem root %s as a workspace (pass --force to do it anyway)", real)
		}
		if h, err := os.UserHomeDir(); err == nil {
			if rh, err := filepath.EvalSymlinks(h); err == nil && rh == real {
				return "", fmt.Errorf("refusing to share your whole home directory %s as a workspace; pick a project folder (or pass --force)", real)
			}
		}
	}
	return real, nil
}

func isRoot(p string) bool {
	return filepath.Dir(p) == p
}

// Protected is a host directory or file a sandbox must never be able to
// change: moat's state (records, disks, templates), its runtime directory
// (sockets), the guest assets and the moat binary. A sandbox that could
// write them could rewrite another sandbox's record to share any host
// folder, or replace the kernel or the binary the user runs.
type Protected struct {
	Path string // absolute, symlink-resolved where it exists
	What string // e.g. "state directory"
}

// ProtectedPaths lists what a layout and the guest assets directory (may be
// empty) put out of a sandbox's reach, with the running executable.
func ProtectedPaths(home, runtime, assetsDir string) []Protected {
	var out []Protected
	add := func(p, what string) {
		if p == "" {
			return
		}
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		out = append(out, Protected{Path: p, What: what})
	}
	add(home, "state directory")
	add(runtime, "runtime directory")
	add(assetsDir, "guest assets directory")
	if exe, err := os.Executable(); err == nil {
		add(exe, "binary")
	}
	return out
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// CheckProtected refuses a workspace inside a protected path, and one that
// contains a protected path unless it is read-only and force is given.
func CheckProtected(w Workspace, force bool, prot []Protected) error {
	for _, p := range prot {
		switch {
		case within(w.Path, p.Path):
			return fmt.Errorf("workspace %s is inside moat's %s %s, which a sandbox must not be able to change; share a project folder elsewhere", w.Path, p.What, p.Path)
		case within(p.Path, w.Path) && !(w.ReadOnly && force):
			return fmt.Errorf("workspace %s contains moat's %s %s, which a sandbox must not be able to change; share a folder that does not contain it (or, with --force, share this one read-only with :ro)", w.Path, p.What, p.Path)
		}
	}
	return nil
}

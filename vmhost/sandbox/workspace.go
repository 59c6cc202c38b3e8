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

// Package assets finds the guest boot assets (kernel, initramfs, modules disk,
// test base disk) that build/guest produces, without any configuration.
//
// Layout of an asset directory, one sub-directory per guest architecture:
//
//	<root>/<arch>/manifest.json   Manifest, naming the files below
//	<root>/<arch>/vmlinux-<release>            (amd64: ELF, booted via PVH)
//	<root>/<arch>/vmlinuz-<release>            (arm64: an uncompressed Image)
//	<root>/<arch>/initramfs-<sha256[:12]>.cpio.gz
//	<root>/<arch>/modules-<release>-<sha256[:12]>.ext4
//	<root>/<arch>/base-busybox-<sha256[:12]>.ext4
//
// File names carry their content hash (or the kernel release), so a newer
// build never overwrites a file a running VM has open.
package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// EnvDir overrides the search with one directory.
const EnvDir = "MOAT_GUEST_DIR"

// BuildCommand is what a user runs to produce the assets.
const BuildCommand = "make guest"

// ManifestName is the manifest's file name inside <root>/<arch>/.
const ManifestName = "manifest.json"

// Manifest describes one architecture's assets. File fields are names
// relative to the manifest's directory.
type Manifest struct {
	Arch          string `json:"arch"`           // GOARCH of the guest
	KernelRelease string `json:"kernel_release"` // uname -r, e.g. 6.1.0-57-amd64
	KernelPackage string `json:"kernel_package"` // Debian package and version it came from
	Kernel        string `json:"kernel"`
	Initrd        string `json:"initrd"`
	Modules       string `json:"modules"`
	Base          string `json:"base"`
	// SHA256 maps each file name above to its hex digest.
	SHA256 map[string]string `json:"sha256"`
}

// Set is a located, validated manifest.
type Set struct {
	Dir string
	Manifest
}

// KernelPath, InitrdPath, ModulesPath and BasePath return absolute paths.
func (s *Set) KernelPath() string  { return filepath.Join(s.Dir, s.Kernel) }
func (s *Set) InitrdPath() string  { return filepath.Join(s.Dir, s.Initrd) }
func (s *Set) ModulesPath() string { return filepath.Join(s.Dir, s.Modules) }
func (s *Set) BasePath() string    { return filepath.Join(s.Dir, s.Base) }

// ErrNotFound is wrapped by Find when no directory holds the assets.
var ErrNotFound = errors.New("guest assets not found")

// SearchDirs lists the roots Find looks in, in order: $MOAT_GUEST_DIR; a
// "guest" directory next to the running binary; ../share/moat/guest relative
// to it; and <user cache dir>/moat/guest.
func SearchDirs() []string {
	if d := os.Getenv(EnvDir); d != "" {
		return []string{d}
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		bin := filepath.Dir(exe)
		dirs = append(dirs, filepath.Join(bin, "guest"), filepath.Join(bin, "..", "share", "moat", "guest"))
	}
	if c, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(c, "moat", "guest"))
	}
	return dirs
}

// Find locates the assets for a guest architecture ("" means the host's).
// Every file the manifest names must exist; hashes are not re-checked here
// (Verify does that) to keep start-up fast.
func Find(arch string) (*Set, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	dirs := SearchDirs()
	var problems []string
	for _, root := range dirs {
		s, err := Load(filepath.Join(root, arch))
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w for linux/%s: %s; rebuild them with `%s`", ErrNotFound, arch, strings.Join(problems, "; "), BuildCommand)
	}
	return nil, fmt.Errorf("%w for linux/%s (looked in %s); build them with `%s` or point %s at them",
		ErrNotFound, arch, strings.Join(dirs, ", "), BuildCommand, EnvDir)
}

// Load reads and checks the manifest in dir.
func Load(dir string) (*Set, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: corrupt manifest: %v", filepath.Join(dir, ManifestName), err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: abs, Manifest: m}
	for _, f := range []struct{ what, name string }{
		{"kernel", m.Kernel}, {"initramfs", m.Initrd}, {"modules disk", m.Modules}, {"base disk", m.Base},
	} {
		if f.name == "" {
			return nil, fmt.Errorf("%s: manifest names no %s", dir, f.what)
		}
		if _, err := os.Stat(filepath.Join(abs, f.name)); err != nil {
			return nil, fmt.Errorf("%s: %s %s is missing", dir, f.what, f.name)
		}
	}
	return s, nil
}

// Files returns the manifest's file names: kernel, initramfs, modules disk,
// base disk.
func (s *Set) Files() []string { return []string{s.Kernel, s.Initrd, s.Modules, s.Base} }

// Verify re-hashes every file against the manifest's SHA256 map. It reads
// all of them (the modules disk is a few hundred MB), so callers use it in
// tests and diagnostics rather than on every start.
func (s *Set) Verify() error {
	for _, name := range s.Files() {
		want, ok := s.SHA256[name]
		if !ok {
			return fmt.Errorf("%s: manifest has no sha256 for %s", s.Dir, name)
		}
		f, err := os.Open(filepath.Join(s.Dir, name))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("%s: %s has sha256 %s, manifest says %s; rebuild with `%s`", s.Dir, name, got, want, BuildCommand)
		}
	}
	return nil
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// debianSources is the archive the guest packages come from. It is written
// into a private apt configuration, so the build machine's own apt sources,
// architectures and state are never used nor changed.
var debianSources = []string{
	"http://deb.debian.org/debian bookworm main",
	"http://deb.debian.org/debian bookworm-updates main",
	"http://deb.debian.org/debian-security bookworm-security main",
}

const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// apt downloads Debian packages of one architecture with a private apt
// state under dir, and caches every .deb and its extraction.
type apt struct {
	arch    string // Debian architecture: amd64, arm64
	dir     string // <cache>/<arch>
	fresh   bool   // lists updated during this run
	logf    func(format string, args ...any)
	offline bool
}

func (a *apt) path(p ...string) string { return filepath.Join(append([]string{a.dir}, p...)...) }

func (a *apt) options() []string {
	return []string{
		"-o", "Dir::State=" + a.path("apt", "state"),
		"-o", "Dir::State::status=" + a.path("apt", "state", "status"),
		"-o", "Dir::Cache=" + a.path("apt", "cache"),
		"-o", "Dir::Etc::SourceList=" + a.path("apt", "etc", "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + a.path("apt", "etc", "sources.list.d"),
		"-o", "Dir::Etc::Preferences=" + a.path("apt", "etc", "preferences"),
		"-o", "Dir::Etc::PreferencesParts=" + a.path("apt", "etc", "preferences.d"),
		"-o", "APT::Architecture=" + a.arch,
		"-o", "APT::Architectures=" + a.arch,
		"-o", "Acquire::Languages=none",
		"-o", "APT::Sandbox::User=root",
		"-o", "Debug::NoLocking=1",
		"-q",
	}
}

func (a *apt) setup() error {
	for _, d := range []string{"apt/state/lists/partial", "apt/cache/archives/partial", "apt/etc/sources.list.d", "apt/etc/preferences.d", "debs", "x"} {
		if err := os.MkdirAll(a.path(d), 0o755); err != nil {
			return err
		}
	}
	var src strings.Builder
	for _, s := range debianSources {
		fmt.Fprintf(&src, "deb [arch=%s signed-by=%s] %s\n", a.arch, debianKeyring, s)
	}
	if err := writeIfChanged(a.path("apt", "etc", "sources.list"), []byte(src.String())); err != nil {
		return err
	}
	if _, err := os.Stat(a.path("apt", "state", "status")); os.IsNotExist(err) {
		return os.WriteFile(a.path("apt", "state", "status"), nil, 0o644)
	}
	return nil
}

func (a *apt) update() error {
	if a.fresh {
		return nil
	}
	if a.offline {
		return fmt.Errorf("packages are missing from the cache %s and -offline is set", a.path("debs"))
	}
	if _, err := os.Stat(debianKeyring); err != nil {
		return fmt.Errorf("%s is missing: install the Debian package debian-archive-keyring", debianKeyring)
	}
	a.logf("apt-get update (%s, private state in %s)", a.arch, a.path("apt"))
	cmd := exec.Command("apt-get", append(a.options(), "update")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update for %s: %v\n%s", a.arch, err, out)
	}
	a.fresh = true
	return nil
}

// cached returns the cached .deb for a package name, if any.
func (a *apt) cached(pkg string) (string, bool) {
	m, _ := filepath.Glob(a.path("debs", pkg+"_*_"+a.arch+".deb"))
	m2, _ := filepath.Glob(a.path("debs", pkg+"_*_all.deb"))
	m = append(m, m2...)
	if len(m) == 0 {
		return "", false
	}
	sort.Strings(m)
	return m[len(m)-1], true
}

// deb returns the path of pkg's .deb, downloading it on first use. Once a
// package is cached it is used as is (delete the cache to pick up a newer
// Debian upload), so repeated builds use the very same bytes.
func (a *apt) deb(pkg string) (string, error) {
	if p, ok := a.cached(pkg); ok {
		return p, nil
	}
	if err := a.update(); err != nil {
		return "", err
	}
	a.logf("apt-get download %s:%s", pkg, a.arch)
	tmp, err := os.MkdirTemp(a.path("debs"), ".dl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", append(a.options(), "download", pkg+":"+a.arch)...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if bytes.Contains(out, []byte("Unable to locate")) || bytes.Contains(out, []byte("Can't select")) || bytes.Contains(out, []byte("has no installation candidate")) {
			hint = fmt.Sprintf(" (%s is not in Debian bookworm for %s, or no longer: for the kernel, set build/guest/kernel.version to a current ABI, see https://packages.debian.org/bookworm/linux-image-%s)", pkg, a.arch, a.arch)
		}
		return "", fmt.Errorf("apt-get download %s:%s: %v%s\n%s", pkg, a.arch, err, hint, bytes.TrimSpace(out))
	}
	got, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(got) != 1 {
		return "", fmt.Errorf("apt-get download %s:%s produced %d files", pkg, a.arch, len(got))
	}
	dst := filepath.Join(a.path("debs"), filepath.Base(got[0]))
	if err := os.Rename(got[0], dst); err != nil {
		return "", err
	}
	return dst, nil
}

// debVersion returns "package=version" read from the .deb.
func debVersion(deb string) (string, error) {
	out, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb -f %s: %v", deb, err)
	}
	var pkg, ver string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Package: "); ok {
			pkg = v
		}
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			ver = v
		}
	}
	return pkg + "=" + ver, nil
}

// extract returns a directory holding the extracted contents of pkg's .deb
// (dpkg-deb -x), extracting on first use. prepare, if set, runs once on the
// fresh extraction before it is published.
func (a *apt) extract(pkg string, prepare func(root string) error) (root, deb string, err error) {
	deb, err = a.deb(pkg)
	if err != nil {
		return "", "", err
	}
	root = a.path("x", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(root, ".moat-done")); err == nil {
		return root, deb, nil
	}
	os.RemoveAll(root)
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", "", err
	}
	a.logf("dpkg-deb -x %s", filepath.Base(deb))
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	if prepare != nil {
		if err := prepare(tmp); err != nil {
			return "", "", fmt.Errorf("%s: %w", pkg, err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".moat-done"), nil, 0o644); err != nil {
		return "", "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", "", err
	}
	return root, deb, nil
}

func writeIfChanged(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(name, data, 0o644)
}

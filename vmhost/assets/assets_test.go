package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeSet writes a manifest and its four files under root/arch, the way
// build/guest lays them out.
func fakeSet(t *testing.T, root, arch string) Manifest {
	t.Helper()
	dir := filepath.Join(root, arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := Manifest{Arch: arch, KernelRelease: "6.1.0-57-" + arch, KernelPackage: "linux-image-6.1.0-57-" + arch + "=6.1.192-3",
		Kernel: "vmlinuz-6.1.0-57-" + arch, SHA256: map[string]string{}}
	files := map[*string]string{&m.Initrd: "initramfs-%s.cpio.gz", &m.Modules: "modules-6.1.0-57-" + arch + "-%s.ext4", &m.Base: "base-busybox-%s.ext4"}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		m.SHA256[name] = hex.EncodeToString(sum[:])
	}
	write(m.Kernel, []byte("kernel"))
	for p, pattern := range files {
		data := []byte(pattern)
		sum := sha256.Sum256(data)
		*p = strings.Replace(pattern, "%s", hex.EncodeToString(sum[:])[:12], 1)
		write(*p, data)
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadVerify(t *testing.T) {
	root := t.TempDir()
	m := fakeSet(t, root, "arm64")
	s, err := Load(filepath.Join(root, "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	if s.KernelRelease != "6.1.0-57-arm64" || s.KernelPath() != filepath.Join(root, "arm64", m.Kernel) {
		t.Fatalf("loaded %+v", s)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(s.BasePath(), []byte("tampered"), 0o644)
	if err := s.Verify(); err == nil || !strings.Contains(err.Error(), m.Base) {
		t.Fatalf("tampered base: %v", err)
	}
	os.Remove(s.InitrdPath())
	if _, err := Load(filepath.Join(root, "arm64")); err == nil || !strings.Contains(err.Error(), "initramfs") {
		t.Fatalf("missing initramfs: %v", err)
	}
}

func TestFindEnv(t *testing.T) {
	root := t.TempDir()
	fakeSet(t, root, "amd64")
	t.Setenv(EnvDir, root)
	if s, err := Find("amd64"); err != nil || s.Arch != "amd64" {
		t.Fatalf("Find amd64: %v", err)
	}
	_, err := Find("arm64")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), BuildCommand) {
		t.Fatalf("Find arm64: %v", err)
	}
	if _, err := Find(""); runtime.GOARCH == "amd64" && err != nil {
		t.Fatalf("Find host arch: %v", err)
	}
	os.WriteFile(filepath.Join(root, "amd64", ManifestName), []byte("{"), 0o644)
	if _, err := Find("amd64"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt manifest: %v", err)
	}
}

// TestBuiltAssets checks real assets when MOAT_GUEST_DIR points at a build
// (make guest sets it): manifest fields as build/guest writes them, and
// every hash.
func TestBuiltAssets(t *testing.T) {
	if os.Getenv(EnvDir) == "" || testing.Short() {
		t.Skip("set " + EnvDir + " to a build/guest output to check it")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		s, err := Load(filepath.Join(os.Getenv(EnvDir), arch))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Arch != arch || !strings.HasSuffix(s.KernelRelease, "-"+arch) || (s.Kernel != "vmlinuz-"+s.KernelRelease && s.Kernel != "vmlinux-"+s.KernelRelease) ||
			!strings.HasPrefix(s.Modules, "modules-"+s.KernelRelease+"-") || !strings.HasPrefix(s.Initrd, "initramfs-") ||
			!strings.HasPrefix(s.Base, "base-busybox-") {
			t.Errorf("%s: unexpected manifest %+v", arch, s.Manifest)
		}
		for _, f := range []string{s.Initrd, s.Modules, s.Base} {
			if h := s.SHA256[f]; len(h) != 64 || !strings.Contains(f, h[:12]) {
				t.Errorf("%s: name %s does not carry its hash %s", arch, f, h)
			}
		}
		if err := s.Verify(); err != nil {
			t.Error(err)
		}
	}
}

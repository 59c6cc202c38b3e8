//go:build linux || darwin

package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/moatsandbox/moat/vmhost/driver"
)

// EnvBinary names an environment variable holding the path of the qemu
// binary to use. It applies to the guest architecture its file name names
// (qemu-system-x86_64 → amd64, qemu-system-aarch64 → arm64) or, when the name
// names neither (a wrapper script, qemu-kvm), to the host's architecture.
const EnvBinary = "MOAT_QEMU"

// binaries maps a guest GOARCH to its qemu system emulator.
var binaries = map[string]string{
	"amd64": "qemu-system-x86_64",
	"arm64": "qemu-system-aarch64",
}

// debianPackage names the Debian/Ubuntu package holding each binary.
var debianPackage = map[string]string{
	"amd64": "qemu-system-x86",
	"arm64": "qemu-system-arm",
}

// archOfBinary infers the guest arch a binary emulates from its name.
func archOfBinary(path string) string {
	base := filepath.Base(path)
	switch {
	case strings.Contains(base, "x86_64"):
		return "amd64"
	case strings.Contains(base, "aarch64"):
		return "arm64"
	}
	return ""
}

// extraDirs are searched after PATH: a GUI app started from Finder on macOS
// does not inherit Homebrew's PATH, and RHEL ships only /usr/libexec/qemu-kvm.
var extraDirs = defaultExtraDirs

func defaultExtraDirs() []string {
	if runtime.GOOS == "darwin" {
		return []string{"/opt/homebrew/bin", "/usr/local/bin", "/opt/local/bin"}
	}
	return []string{"/usr/bin", "/usr/local/bin"}
}

// findBinary returns the qemu binary for a guest arch, or an error wrapping
// driver.ErrNotAvailable that says how to install it.
func findBinary(arch string) (string, error) {
	name, ok := binaries[arch]
	if !ok {
		return "", fmt.Errorf("%w: qemu: guest architecture %q is not supported (use amd64 or arm64)", driver.ErrNotAvailable, arch)
	}
	if p := os.Getenv(EnvBinary); p != "" {
		if a := archOfBinary(p); a == arch || (a == "" && arch == runtime.GOARCH) {
			full, err := exec.LookPath(p)
			if err != nil {
				return "", fmt.Errorf("%w: %s=%s: %v (unset it to search PATH)", driver.ErrNotAvailable, EnvBinary, p, err)
			}
			return full, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range extraDirs() {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if runtime.GOOS == "linux" && arch == runtime.GOARCH && len(extraDirs()) > 0 {
		if fi, err := os.Stat("/usr/libexec/qemu-kvm"); err == nil && !fi.IsDir() {
			return "/usr/libexec/qemu-kvm", nil
		}
	}
	return "", fmt.Errorf("%w: %s not found: install it with \"apt-get install %s\" (Debian/Ubuntu) or \"brew install qemu\" (macOS), or set %s to its path",
		driver.ErrNotAvailable, name, debianPackage[arch], EnvBinary)
}

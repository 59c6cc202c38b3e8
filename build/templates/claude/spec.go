package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Name is the local template name the agent table's claude entry looks for.
const Name = "claude"

// Suite is the Debian release.
const Suite = "bookworm"

//go:embed claude-code.version
var versionFile string

// Version is the pinned Claude Code version (claude-code.version, the one
// place it is written).
func Version() (string, error) {
	v := strings.TrimSpace(versionFile)
	if v == "" || strings.ContainsAny(v, " /\n") {
		return "", fmt.Errorf("claude-code.version holds %q, not a version", versionFile)
	}
	return v, nil
}

// Packages are installed on top of Debian's minbase variant.
var Packages = []string{
	"bash", "coreutils", "git", "ca-certificates", "curl", "sudo", "less", "ripgrep",
	"procps", "openssh-client", "python3", "nodejs", "npm",
}

// Mirrors are the apt sources (bookworm, its updates and security).
var Mirrors = []string{
	"deb http://deb.debian.org/debian bookworm main",
	"deb http://deb.debian.org/debian bookworm-updates main",
	"deb http://deb.debian.org/debian-security bookworm-security main",
}

// Env is the image's environment.
var Env = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"DISABLE_AUTOUPDATER=1", // the template pins the version; update by rebuilding
}

// recipe changes whenever the build steps in main.go change meaningfully.
const recipe = "3"

// NPMPackage is the npm package holding the native binary for arch.
func NPMPackage(arch string) (string, error) {
	switch arch {
	case "amd64":
		return "@anthropic-ai/claude-code-linux-x64", nil
	case "arm64":
		return "@anthropic-ai/claude-code-linux-arm64", nil
	}
	return "", fmt.Errorf("no Claude Code build for linux/%s", arch)
}

// DebArch is Debian's name for arch.
func DebArch(arch string) string { return arch } // amd64, arm64: the same

// Key names a cached build: everything that goes into the image.
func Key(arch, version string) string {
	h := sha256.New()
	fmt.Fprintln(h, recipe, arch, version, Suite, strings.Join(Packages, ","), strings.Join(Mirrors, ";"), strings.Join(Env, ";"))
	return fmt.Sprintf("claude-%s-%s-%s", version, arch, hex.EncodeToString(h.Sum(nil))[:12])
}

// CacheDir is where built layouts are kept (MOAT_TEMPLATE_CACHE overrides).
func CacheDir() (string, error) {
	if d := os.Getenv("MOAT_TEMPLATE_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "moat", "templates", "claude"), nil
}

package service

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moatsandbox/moat/vmhost/state"
)

// SystemdUnitDir is the directory of the user's own systemd units:
// $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user.
func SystemdUnitDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "systemd", "user"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for the systemd user unit: %w", err)
	}
	return filepath.Join(h, ".config", "systemd", "user"), nil
}

// SystemdUnit renders the systemd user unit of s.
//
// KillMode=process is what keeps sandboxes alive: the supervisors the
// daemon starts stay in the unit's control group, and the default
// (control-group) would SIGTERM them all on stop, restart or upgrade.
func SystemdUnit(s Spec) (string, error) {
	if !filepath.IsAbs(s.Exe) {
		return "", fmt.Errorf("systemd unit: ExecStart must be absolute, not %q", s.Exe)
	}
	var b strings.Builder
	b.WriteString("# Written by `moat service install`; run it again to update, `moat service uninstall` to remove.\n")
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s\n", DisplayName)
	b.WriteString("Documentation=https://github.com/moatsandbox/moat\n")
	b.WriteString("\n[Service]\n")
	b.WriteString("Type=simple\n")
	args := []string{s.Exe}
	args = append(args, s.Args...)
	var q []string
	for _, a := range args {
		v, err := systemdQuote(a)
		if err != nil {
			return "", fmt.Errorf("systemd unit: %w", err)
		}
		q = append(q, v)
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(q, " "))
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		v, err := systemdQuote(k + "=" + s.Env[k])
		if err != nil {
			return "", fmt.Errorf("systemd unit: %w", err)
		}
		if !strings.HasPrefix(v, `"`) {
			v = `"` + v + `"`
		}
		// Environment= expands specifiers (%) but not variables ($).
		fmt.Fprintf(&b, "Environment=%s\n", strings.ReplaceAll(v, "$$", "$"))
	}
	b.WriteString("Restart=on-failure\n")
	b.WriteString("RestartSec=2s\n")
	b.WriteString("# Stop and restart signal the daemon only: sandboxes belong to their\n")
	b.WriteString("# supervisor processes and keep running.\n")
	b.WriteString("KillMode=process\n")
	b.WriteString("TimeoutStopSec=20s\n")
	b.WriteString("\n[Install]\n")
	b.WriteString("WantedBy=default.target\n")
	return b.String(), nil
}

// systemdQuote quotes one word for ExecStart= (and Environment=): double
// quotes around words with blanks or quotes, backslash escapes inside, "%"
// doubled (specifiers) and "$" doubled (variable expansion).
func systemdQuote(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", fmt.Errorf("%q contains a newline or NUL", s)
	}
	e := strings.ReplaceAll(s, "%", "%%")
	e = strings.ReplaceAll(e, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return e, nil
	}
	e = strings.ReplaceAll(e, `\`, `\\`)
	e = strings.ReplaceAll(e, `"`, `\"`)
	return `"` + e + `"`, nil
}

// systemdEnvHome returns the MOAT_HOME a unit sets ("" when it sets none).
func systemdEnvHome(unit string) string {
	prefix := state.EnvHome + "="
	for _, line := range strings.Split(unit, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) && len(v) >= 2 {
			v = v[1 : len(v)-1]
			v = strings.ReplaceAll(v, `\"`, `"`)
			v = strings.ReplaceAll(v, `\\`, `\`)
		}
		if h, ok := strings.CutPrefix(v, prefix); ok {
			return strings.ReplaceAll(h, "%%", "%")
		}
	}
	return ""
}

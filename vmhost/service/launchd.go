package service

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// LaunchAgentPath is where the per-user LaunchAgent lives:
// ~/Library/LaunchAgents/<LaunchdLabel>.plist.
func LaunchAgentPath() (string, error) {
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for the LaunchAgent: %w", err)
	}
	return filepath.Join(h, "Library", "LaunchAgents", LaunchdLabel+".plist"), nil
}

// LaunchdPlist renders the LaunchAgent property list of s.
//
//   - RunAtLoad: starts at login (bootstrap into gui/<uid>).
//   - KeepAlive {SuccessfulExit: false}: relaunched when it dies, but not
//     after a clean exit (`moat vmhost --stop`), like Restart=on-failure.
//   - AbandonProcessGroup: launchd must not kill what is left of the job's
//     process group when the daemon exits (supervisors start their own
//     sessions; this is the belt to those braces).
//   - ProcessType Background, StandardOutPath/StandardErrorPath: the
//     daemon log in the state directory.
func LaunchdPlist(s Spec) ([]byte, error) {
	if !filepath.IsAbs(s.Exe) {
		return nil, fmt.Errorf("launchd plist: the program must be absolute, not %q", s.Exe)
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n<dict>\n")
	key := func(k string) { fmt.Fprintf(&b, "\t<key>%s</key>\n", esc(k)) }
	str := func(ind, v string) { fmt.Fprintf(&b, "%s<string>%s</string>\n", ind, esc(v)) }
	boolean := func(ind string, v bool) { fmt.Fprintf(&b, "%s<%v/>\n", ind, v) }

	key("Label")
	str("\t", LaunchdLabel)
	key("ProgramArguments")
	b.WriteString("\t<array>\n")
	str("\t\t", s.Exe)
	for _, a := range s.Args {
		str("\t\t", a)
	}
	b.WriteString("\t</array>\n")
	if len(s.Env) > 0 {
		key("EnvironmentVariables")
		b.WriteString("\t<dict>\n")
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			fmt.Fprintf(&b, "\t\t<key>%s</key>\n", esc(k))
			str("\t\t", s.Env[k])
		}
		b.WriteString("\t</dict>\n")
	}
	key("RunAtLoad")
	boolean("\t", true)
	key("KeepAlive")
	b.WriteString("\t<dict>\n\t\t<key>SuccessfulExit</key>\n")
	boolean("\t\t", false)
	b.WriteString("\t</dict>\n")
	key("AbandonProcessGroup")
	boolean("\t", true)
	key("ProcessType")
	str("\t", "Background")
	key("WorkingDirectory")
	str("\t", "/")
	if s.LogPath != "" {
		key("StandardOutPath")
		str("\t", s.LogPath)
		key("StandardErrorPath")
		str("\t", s.LogPath)
	}
	b.WriteString("</dict>\n</plist>\n")
	return b.Bytes(), nil
}

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moatsandbox/moat/vmhost/state"
)

// Launchd manages the per-user LaunchAgent with the launchctl subcommands
// of macOS 10.11+ (bootstrap, bootout, kickstart, print) in the gui/<uid>
// domain. The legacy load/unload fail on macOS 13+ ("Load failed: 5:
// Input/output error").
type Launchd struct {
	Path string // the plist (LaunchAgentPath)
	UID  int
	Run  Runner
	// Wait is how long bootout may take to finish (default 10 s).
	Wait time.Duration
}

func (m *Launchd) Name() string    { return "launchd" }
func (m *Launchd) domain() string  { return "gui/" + strconv.Itoa(m.UID) }
func (m *Launchd) service() string { return m.domain() + "/" + LaunchdLabel }

func (m *Launchd) loaded(ctx context.Context) (string, bool) {
	out, err := m.Run(ctx, "launchctl", "print", m.service())
	return out, err == nil
}

func (m *Launchd) Install(ctx context.Context, s Spec) error {
	b, err := LaunchdPlist(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(m.Path), 0o755); err != nil {
		return err
	}
	// launchd reads the plist at bootstrap: an older definition that is
	// loaded must be booted out first (this stops the daemon, not the
	// sandboxes; Start bootstraps the new one).
	if err := m.bootout(ctx); err != nil {
		return err
	}
	if err := state.WriteFileAtomic(m.Path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", m.Path, err)
	}
	return nil
}

func (m *Launchd) bootout(ctx context.Context) error {
	if _, ok := m.loaded(ctx); !ok {
		return nil
	}
	if _, err := m.Run(ctx, "launchctl", "bootout", m.service()); err != nil {
		if _, ok := m.loaded(ctx); ok {
			return err
		}
	}
	wait := m.Wait
	if wait == 0 {
		wait = 10 * time.Second
	}
	for deadline := time.Now().Add(wait); ; {
		if _, ok := m.loaded(ctx); !ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("launchctl bootout %s: still loaded after %v", m.service(), wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *Launchd) installed() bool {
	_, err := os.Stat(m.Path)
	return err == nil
}

func (m *Launchd) Uninstall(ctx context.Context) error {
	if err := m.bootout(ctx); err != nil {
		return err
	}
	if err := os.Remove(m.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (m *Launchd) Start(ctx context.Context) error {
	if !m.installed() {
		return ErrNotInstalled
	}
	if _, ok := m.loaded(ctx); !ok {
		// RunAtLoad starts it.
		_, err := m.Run(ctx, "launchctl", "bootstrap", m.domain(), m.Path)
		return err
	}
	_, err := m.Run(ctx, "launchctl", "kickstart", m.service())
	return err
}

func (m *Launchd) Stop(ctx context.Context) error {
	if !m.installed() {
		return ErrNotInstalled
	}
	return m.bootout(ctx)
}

func (m *Launchd) Restart(ctx context.Context) error {
	if !m.installed() {
		return ErrNotInstalled
	}
	if _, ok := m.loaded(ctx); !ok {
		return m.Start(ctx)
	}
	_, err := m.Run(ctx, "launchctl", "kickstart", "-k", m.service())
	return err
}

func (m *Launchd) Status(ctx context.Context) Status {
	st := Status{Kind: "launchd agent", Where: m.Path}
	b, err := os.ReadFile(m.Path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			st.Err = err
		}
		return st
	}
	st.Installed = true
	if pl, err := parsePlist(b); err == nil {
		if env, ok := pl["EnvironmentVariables"].(map[string]any); ok {
			st.Home, _ = env[state.EnvHome].(string)
		}
	}
	out, ok := m.loaded(ctx)
	if !ok {
		st.State = "not loaded"
		return st
	}
	st.State, st.PID = parseLaunchctlPrint(out)
	st.Running = st.State == "running"
	return st
}

// parseLaunchctlPrint finds "state = running" and "pid = 123" at the top
// level of `launchctl print gui/<uid>/<label>`.
func parseLaunchctlPrint(out string) (state string, pid int) {
	for _, line := range strings.Split(out, "\n") {
		// Top-level properties are indented by one tab; nested blocks more.
		if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		switch k {
		case "state":
			if state == "" {
				state = v
			}
		case "pid":
			if pid == 0 {
				pid, _ = strconv.Atoi(v)
			}
		}
	}
	return state, pid
}

// parsePlist decodes an XML property list of dicts, arrays, strings,
// integers and booleans (what LaunchdPlist writes).
func parsePlist(b []byte) (map[string]any, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = false
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "dict" {
			v, err := plistValue(dec, se)
			if err != nil {
				return nil, err
			}
			return v.(map[string]any), nil
		}
	}
}

func plistValue(dec *xml.Decoder, se xml.StartElement) (any, error) {
	switch se.Name.Local {
	case "true", "false":
		if err := dec.Skip(); err != nil {
			return nil, err
		}
		return se.Name.Local == "true", nil
	case "string", "key":
		var s string
		err := dec.DecodeElement(&s, &se)
		return s, err
	case "integer":
		var s string
		if err := dec.DecodeElement(&s, &se); err != nil {
			return nil, err
		}
		return strconv.Atoi(strings.TrimSpace(s))
	case "array", "dict":
		var arr []any
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				v, err := plistValue(dec, t)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			case xml.EndElement:
				if se.Name.Local == "array" {
					return arr, nil
				}
				m := map[string]any{}
				if len(arr)%2 != 0 {
					return nil, errors.New("plist: dict with a key and no value")
				}
				for i := 0; i < len(arr); i += 2 {
					k, ok := arr[i].(string)
					if !ok {
						return nil, errors.New("plist: dict key is not a string")
					}
					m[k] = arr[i+1]
				}
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("plist: unknown element <%s>", se.Name.Local)
}

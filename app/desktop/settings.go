package desktop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/moatsandbox/moat/app/terminal"
	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/state"
)

// SettingsFile is the settings' name in the state dir.
const SettingsFile = "settings.json"

// Settings are the app's preferences (BINDINGS.md).
type Settings struct {
	Terminal        string `json:"terminal"`
	CustomCommand   string `json:"customCommand"`
	DefaultAgent    string `json:"defaultAgent"`
	DefaultTemplate string `json:"defaultTemplate"`
	CPUs            int    `json:"cpus"`
	MemoryMiB       int    `json:"memoryMiB"`
}

// settingsFile is what settings.json holds: the Settings and what the app
// remembers for itself (not part of Settings, so SaveSettings from the
// window never resets it).
type settingsFile struct {
	Settings
	// ServiceOffered: the first-start offer to install the VM host service
	// was answered (installed or declined).
	ServiceOffered bool `json:"serviceOffered,omitempty"`
}

// readSettingsFile reads settings.json as stored (no defaults filled in);
// the zero value when it does not exist. Call with smu held.
func (a *App) readSettingsFile() (settingsFile, error) {
	var f settingsFile
	b, err := os.ReadFile(a.cfg.SettingsPath)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return settingsFile{}, fmt.Errorf("%s is not valid JSON: %v", a.cfg.SettingsPath, err)
	}
	return f, nil
}

// writeSettingsFile stores settings.json atomically. Call with smu held.
func (a *App) writeSettingsFile(f settingsFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(a.cfg.SettingsPath, append(b, '\n'), 0o600)
}

func (a *App) goos() string {
	if a.cfg.GOOS != "" {
		return a.cfg.GOOS
	}
	return runtime.GOOS
}

func (a *App) defaults() Settings {
	return Settings{Terminal: terminal.Default(a.goos(), a.finder()), DefaultAgent: "claude"}
}

// GetSettings reads settings.json (defaults for what is missing).
func (a *App) GetSettings() (Settings, error) {
	a.smu.Lock()
	defer a.smu.Unlock()
	s := a.defaults()
	b, err := os.ReadFile(a.cfg.SettingsPath)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return a.defaults(), fmt.Errorf("%s is not valid JSON: %v", a.cfg.SettingsPath, err)
	}
	d := a.defaults()
	if s.Terminal == "" {
		s.Terminal = d.Terminal
	}
	if s.DefaultAgent == "" {
		s.DefaultAgent = d.DefaultAgent
	}
	return s, nil
}

// SaveSettings validates and stores the settings.
func (a *App) SaveSettings(s Settings) error {
	if err := a.validate(s); err != nil {
		return err
	}
	a.smu.Lock()
	defer a.smu.Unlock()
	// Keep what the app remembers; an unreadable file is replaced, as before.
	old, _ := a.readSettingsFile()
	return a.writeSettingsFile(settingsFile{Settings: s, ServiceOffered: old.ServiceOffered})
}

func (a *App) validate(s Settings) error {
	if s.Terminal == terminal.Custom {
		if _, err := terminal.BuildCustom(s.CustomCommand, []string{"moat"}); err != nil {
			return err
		}
	} else if _, ok := terminal.Lookup(a.goos(), s.Terminal); !ok {
		return fmt.Errorf("unknown terminal %q", s.Terminal)
	}
	if _, err := agents.Lookup(s.DefaultAgent); err != nil {
		return err
	}
	if s.CPUs < 0 || s.CPUs > 256 {
		return fmt.Errorf("invalid number of CPUs %d", s.CPUs)
	}
	if s.MemoryMiB < 0 || (s.MemoryMiB > 0 && s.MemoryMiB < 256) {
		return fmt.Errorf("invalid memory %d MiB (at least 256, or 0 for the default)", s.MemoryMiB)
	}
	return nil
}

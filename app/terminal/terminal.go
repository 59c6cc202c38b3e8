// Package terminal is the exec bridge of the desktop app: it opens the
// user's terminal of choice running a moat command (`moat run NAME`, or
// `moat exec -it NAME CMD...`) with the absolute path of the moat binary.
//
// Every terminal is a table entry that turns the command's argv into the
// argv of the terminal process. Where a terminal takes the program and its
// arguments as separate arguments (gnome-terminal --, konsole -e, xterm -e,
// kitty, alacritty -e, wezterm start --, foot, Ghostty -e, Windows Terminal)
// nothing goes through a shell. Where it only takes a string — Terminal.app
// and iTerm2 (AppleScript `do script` / `write text`, a shell command line),
// PowerShell (a script) and cmd (a command line) — the argv is quoted for
// exactly that parser: POSIX single quotes inside an AppleScript string,
// PowerShell verbatim strings sent as -EncodedCommand, CommandLineToArgvW
// quoting with cmd's ^ escapes.
//
// A custom command template is split into words like a shell would (it is
// never run by one); a word {args} becomes the argv, one word per argument,
// and {cmd} anywhere in a word becomes the argv as one POSIX-shell-quoted
// string (for `sh -c {cmd}` or terminals that take a command line).
package terminal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Custom is the ID of the user's own command template.
const Custom = "custom"

var errUnterminated = errors.New("unterminated quote in the custom terminal command")

// Command is a process to start: Argv, and on Windows optionally the raw
// command line (cmd.exe does not parse its command line like other programs).
type Command struct {
	Argv []string
	// CmdLine, when set, is the exact Windows command line (Argv[0] is still the program).
	CmdLine string
	// NewConsole: Windows console programs need a console window of their own.
	NewConsole bool
}

// Terminal is one entry of the table.
type Terminal struct {
	ID   string
	Name string
	OS   string // GOOS it exists on
	// Bins are the executables looked up in PATH; the first found is used.
	Bins []string
	// Apps are macOS app bundles (under /Applications, ~/Applications or
	// /System/Applications/Utilities); Exe is the executable inside the
	// bundle, "" when the terminal is driven through osascript or open.
	Apps []string
	Exe  string
	// build returns the terminal's argv given the binary found (bin) and the
	// command to run.
	build func(bin string, argv []string) Command
}

func plain(pre ...string) func(string, []string) Command {
	return func(bin string, argv []string) Command {
		return Command{Argv: append(append([]string{bin}, pre...), argv...)}
	}
}

// Table is every terminal Moat knows, for every OS.
var Table = []Terminal{
	// macOS
	{ID: "terminal", Name: "Terminal", OS: "darwin", Bins: []string{"osascript"}, Apps: []string{"Terminal.app"},
		build: func(bin string, argv []string) Command {
			return Command{Argv: []string{bin,
				"-e", `tell application "Terminal"`,
				"-e", "activate",
				"-e", "do script " + AppleScriptString(ShellJoin(argv)),
				"-e", "end tell"}}
		}},
	{ID: "iterm2", Name: "iTerm2", OS: "darwin", Bins: []string{"osascript"}, Apps: []string{"iTerm.app"},
		build: func(bin string, argv []string) Command {
			return Command{Argv: []string{bin,
				"-e", `tell application "iTerm"`,
				"-e", "activate",
				"-e", "set w to (create window with default profile)",
				"-e", "tell current session of w to write text " + AppleScriptString(ShellJoin(argv)),
				"-e", "end tell"}}
		}},
	{ID: "ghostty", Name: "Ghostty", OS: "darwin", Bins: []string{"open"}, Apps: []string{"Ghostty.app"},
		build: func(bin string, argv []string) Command {
			// open(1) passes everything after --args as argv; Ghostty's -e
			// takes all remaining arguments as the command.
			return Command{Argv: append([]string{bin, "-na", "Ghostty.app", "--args", "-e"}, argv...)}
		}},
	{ID: "wezterm", Name: "WezTerm", OS: "darwin", Bins: []string{"wezterm"}, Apps: []string{"WezTerm.app"}, Exe: "Contents/MacOS/wezterm",
		build: plain("start", "--")},
	{ID: "kitty", Name: "kitty", OS: "darwin", Bins: []string{"kitty"}, Apps: []string{"kitty.app"}, Exe: "Contents/MacOS/kitty",
		build: plain()},
	{ID: "alacritty", Name: "Alacritty", OS: "darwin", Bins: []string{"alacritty"}, Apps: []string{"Alacritty.app"}, Exe: "Contents/MacOS/alacritty",
		build: plain("-e")},

	// Windows
	{ID: "wt", Name: "Windows Terminal", OS: "windows", Bins: []string{"wt.exe"},
		build: func(bin string, argv []string) Command {
			// wt splits its own arguments into subcommands at ";", even
			// inside an argument; "\;" is a literal semicolon.
			a := []string{bin, "new-tab", "--"}
			for _, s := range argv {
				a = append(a, strings.ReplaceAll(s, ";", `\;`))
			}
			return Command{Argv: a}
		}},
	{ID: "powershell", Name: "PowerShell", OS: "windows", Bins: []string{"pwsh.exe", "powershell.exe"},
		build: func(bin string, argv []string) Command {
			return Command{Argv: []string{bin, "-NoLogo", "-NoExit", "-EncodedCommand", PowerShellEncoded(PowerShellCommand(argv))}, NewConsole: true}
		}},
	{ID: "cmd", Name: "Command Prompt", OS: "windows", Bins: []string{"cmd.exe"},
		build: func(bin string, argv []string) Command {
			return Command{Argv: append([]string{bin, "/d", "/k"}, argv...),
				CmdLine:    WindowsArg(bin) + " /d /k " + CmdEscape(WindowsJoin(argv)),
				NewConsole: true}
		}},

	// Linux and other freedesktop systems
	{ID: "x-terminal-emulator", Name: "Default terminal (x-terminal-emulator)", OS: "linux", Bins: []string{"x-terminal-emulator"},
		build: plain("-e")}, // Debian policy 11.8.3: -e takes the command and its arguments
	{ID: "gnome-terminal", Name: "GNOME Terminal", OS: "linux", Bins: []string{"gnome-terminal"}, build: plain("--")},
	{ID: "konsole", Name: "Konsole", OS: "linux", Bins: []string{"konsole"}, build: plain("-e")},
	{ID: "xfce4-terminal", Name: "Xfce Terminal", OS: "linux", Bins: []string{"xfce4-terminal"}, build: plain("-x")},
	{ID: "kitty", Name: "kitty", OS: "linux", Bins: []string{"kitty"}, build: plain()},
	{ID: "alacritty", Name: "Alacritty", OS: "linux", Bins: []string{"alacritty"}, build: plain("-e")},
	{ID: "wezterm", Name: "WezTerm", OS: "linux", Bins: []string{"wezterm"}, build: plain("start", "--")},
	{ID: "foot", Name: "foot", OS: "linux", Bins: []string{"foot"}, build: plain()},
	{ID: "xterm", Name: "XTerm", OS: "linux", Bins: []string{"xterm"}, build: plain("-e")},
}

// ForOS is the table's entries for goos (freedesktop systems share Linux's).
func ForOS(goos string) []Terminal {
	if goos != "darwin" && goos != "windows" {
		goos = "linux"
	}
	var out []Terminal
	for _, t := range Table {
		if t.OS == goos {
			out = append(out, t)
		}
	}
	return out
}

// Lookup finds a terminal of goos by ID.
func Lookup(goos, id string) (Terminal, bool) {
	for _, t := range ForOS(goos) {
		if t.ID == id {
			return t, true
		}
	}
	return Terminal{}, false
}

// Finder locates executables and app bundles; tests replace it.
type Finder struct {
	LookPath func(string) (string, error)
	// AppDirs are searched for macOS bundles.
	AppDirs []string
	Stat    func(string) (os.FileInfo, error)
}

// DefaultFinder looks in PATH and the usual application folders.
func DefaultFinder() Finder {
	dirs := []string{"/Applications", "/System/Applications/Utilities", "/System/Applications"}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "Applications"))
	}
	return Finder{LookPath: exec.LookPath, AppDirs: dirs, Stat: os.Stat}
}

// Find returns the program to run for t, or an error when it is not installed.
func (f Finder) Find(t Terminal) (string, error) {
	for _, app := range t.Apps {
		for _, d := range f.AppDirs {
			p := filepath.Join(d, app)
			if _, err := f.Stat(p); err != nil {
				continue
			}
			if t.Exe != "" {
				return filepath.Join(p, t.Exe), nil
			}
			// Driven by osascript or open: the bundle only proves it is installed.
			for _, b := range t.Bins {
				if bin, err := f.LookPath(b); err == nil {
					return bin, nil
				}
			}
			return t.Bins[0], nil
		}
	}
	if len(t.Apps) > 0 && t.Exe == "" {
		return "", fmt.Errorf("%s is not installed (no %s)", t.Name, t.Apps[0])
	}
	for _, b := range t.Bins {
		if bin, err := f.LookPath(b); err == nil {
			return bin, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (%s not found in PATH)", t.Name, t.Bins[0])
}

// Available reports which of goos's terminals are installed, in table order.
func (f Finder) Available(goos string) map[string]bool {
	m := map[string]bool{}
	for _, t := range ForOS(goos) {
		_, err := f.Find(t)
		m[t.ID] = err == nil
	}
	return m
}

// Build returns the command that opens terminal id (or the custom template
// when id is Custom) running argv.
func Build(goos, id, template string, f Finder, argv []string) (Command, error) {
	if len(argv) == 0 {
		return Command{}, errors.New("nothing to run in the terminal")
	}
	if id == Custom {
		return BuildCustom(template, argv)
	}
	t, ok := Lookup(goos, id)
	if !ok {
		return Command{}, fmt.Errorf("unknown terminal %q on %s", id, goos)
	}
	bin, err := f.Find(t)
	if err != nil {
		return Command{}, err
	}
	return t.build(bin, argv), nil
}

// BuildCustom expands a custom template: a word {args} becomes argv,
// {cmd} inside a word becomes ShellJoin(argv).
func BuildCustom(template string, argv []string) (Command, error) {
	words, err := splitTemplate(template)
	if err != nil {
		return Command{}, err
	}
	if len(words) == 0 {
		return Command{}, errors.New("the custom terminal command is empty")
	}
	if !strings.Contains(template, "{cmd}") && !strings.Contains(template, "{args}") {
		return Command{}, errors.New("the custom terminal command needs {cmd} or {args} where the moat command goes")
	}
	cmd := ShellJoin(argv)
	var out []string
	for _, w := range words {
		if w == "{args}" {
			out = append(out, argv...)
			continue
		}
		out = append(out, strings.ReplaceAll(w, "{cmd}", cmd))
	}
	return Command{Argv: out}, nil
}

// Moat returns the absolute path of the running moat binary, symlinks resolved.
func Moat() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Abs(exe)
}

// RunArgv is `moat run NAME`.
func RunArgv(moat, name string) []string { return []string{moat, "run", name} }

// ExecArgv is `moat exec -it NAME CMD...`.
func ExecArgv(moat, name string, cmd ...string) []string {
	return append([]string{moat, "exec", "-it", name}, cmd...)
}

// Launcher opens a terminal running a command.
type Launcher interface {
	Launch(ctx context.Context, argv []string) error
}

// Exec is the real Launcher: Terminal is a table ID or Custom.
type Exec struct {
	Terminal string
	Template string
	Finder   Finder
	// Env for the terminal process; nil: this process's.
	Env []string
	// Start starts the command (tests replace it); nil: start and reap it.
	Start func(Command) error
}

// Launch implements Launcher.
func (e *Exec) Launch(ctx context.Context, argv []string) error {
	f := e.Finder
	if f.LookPath == nil {
		f = DefaultFinder()
	}
	id := e.Terminal
	if id == "" {
		id = Default(runtime.GOOS, f)
	}
	c, err := Build(runtime.GOOS, id, e.Template, f, argv)
	if err != nil {
		return err
	}
	if e.Start != nil {
		return e.Start(c)
	}
	return start(c, e.Env)
}

// Default is the first installed terminal of goos (x-terminal-emulator,
// Terminal.app, Windows Terminal first), or the table's first entry.
func Default(goos string, f Finder) string {
	ts := ForOS(goos)
	for _, t := range ts {
		if _, err := f.Find(t); err == nil {
			return t.ID
		}
	}
	return ts[0].ID
}

func start(c Command, env []string) error {
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = env
	setSysProcAttr(cmd, c)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open the terminal (%s): %w", filepath.Base(c.Argv[0]), err)
	}
	go cmd.Wait()
	return nil
}

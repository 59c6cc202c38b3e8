package terminal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf16"
)

// nasty are words a sandbox name, a path or a command may hold.
var nasty = []string{
	"plain",
	"with space",
	"/Users/Ada Lovelace/my project",
	`C:\Program Files\Moat\moat.exe`,
	`it's`,
	`say "hi"`,
	`$HOME and $(id) and ${X}`,
	"back`tick`",
	`back\slash\`,
	`trailing\\`,
	`\"`,
	"semi;colon && echo pwned | cat > /tmp/x",
	"percent %PATH% !bang! ^caret (paren) <in> &amp",
	"ünïcödé 日本語 🦀",
	"‘curly’ ‚low‛",
	"tab\there",
	"new\nline",
	"",
	"-e",
	"--",
	"*?[glob]~",
}

func moatArgv(name string) []string {
	return []string{"/opt/My Apps/mo'at$/moat", "exec", "-it", name, "sh", "-c", "echo " + name}
}

// fakeFinder: every binary is in /usr/bin, every app bundle exists.
func fakeFinder(apps bool) Finder {
	return Finder{
		LookPath: func(b string) (string, error) { return "/usr/bin/" + b, nil },
		AppDirs:  []string{"/Applications"},
		Stat: func(p string) (os.FileInfo, error) {
			if apps {
				return nil, nil
			}
			return nil, os.ErrNotExist
		},
	}
}

func TestShellRoundTripThroughSh(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no /bin/sh")
	}
	for _, w := range nasty {
		argv := moatArgv(w)
		line := ShellJoin(argv)
		out, err := exec.Command("/bin/sh", "-c", "set -- "+line+"\n"+`for a in "$@"; do printf '%s\0' "$a"; done`).Output()
		if err != nil {
			t.Fatalf("%q: sh: %v", line, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if !reflect.DeepEqual(got, argv) {
			t.Errorf("sh split %s\n into %q\n want %q", line, got, argv)
		}
	}
}

func TestShellQuoteSafeWordsUnquoted(t *testing.T) {
	for in, want := range map[string]string{
		"run": "run", "/usr/bin/moat": "/usr/bin/moat", "a b": "'a b'", "": "''", "it's": `'it'\''s'`,
		"$x": "'$x'", "~": "'~'",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// appleScriptUnquote parses an AppleScript string literal.
func appleScriptUnquote(t *testing.T, s string) string {
	t.Helper()
	if !strings.HasPrefix(s, `"`) || !strings.HasSuffix(s, `"`) {
		t.Fatalf("not a string literal: %s", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			t.Fatalf("unescaped quote in %s", s)
		}
		if s[i] == '\\' {
			i++
			if s[i] != '\\' && s[i] != '"' {
				t.Fatalf("bad escape in %s", s)
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// commandLineToArgv parses a Windows command line like CommandLineToArgvW
// does for arguments after the program name (the MSVCRT rules).
func commandLineToArgv(s string) []string {
	var out []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out
		}
		var b strings.Builder
		inq := false
		for i < len(s) && (inq || (s[i] != ' ' && s[i] != '\t')) {
			if s[i] == '\\' {
				n := 0
				for i < len(s) && s[i] == '\\' {
					n++
					i++
				}
				if i < len(s) && s[i] == '"' {
					b.WriteString(strings.Repeat(`\`, n/2))
					if n%2 == 1 {
						b.WriteByte('"')
						i++
					}
				} else {
					b.WriteString(strings.Repeat(`\`, n))
				}
				continue
			}
			if s[i] == '"' {
				if inq && i+1 < len(s) && s[i+1] == '"' { // "" inside quotes
					b.WriteByte('"')
					i += 2
					continue
				}
				inq = !inq
				i++
				continue
			}
			b.WriteByte(s[i])
			i++
		}
		out = append(out, b.String())
	}
}

// cmdUnescape is what cmd.exe does to a line of ^-escaped characters: each
// ^ is dropped and the next character kept literally.
func cmdUnescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '^' {
			i++
		} else if strings.IndexByte(`()%!"<>&|`, s[i]) >= 0 {
			t.Fatalf("unescaped cmd metacharacter %q in %s", s[i], s)
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestWindowsArgRoundTrip(t *testing.T) {
	for _, w := range nasty {
		argv := moatArgv(w)
		if got := commandLineToArgv(WindowsJoin(argv)); !reflect.DeepEqual(got, argv) {
			t.Errorf("%s\n parsed %q\n want %q", WindowsJoin(argv), got, argv)
		}
	}
}

func decodePS(t *testing.T, enc string) string {
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(b)%2 != 0 {
		t.Fatalf("bad -EncodedCommand %q: %v", enc, err)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

// psUnquote splits "& 'a' 'b'" back into words, checking every quote
// character inside a word is doubled.
func psUnquote(t *testing.T, script string) []string {
	if !strings.HasPrefix(script, "& ") {
		t.Fatalf("script %q does not use the call operator", script)
	}
	isQ := func(r rune) bool { return strings.ContainsRune("'\u2018\u2019\u201a\u201b", r) }
	rs := []rune(script[2:])
	var out []string
	for i := 0; i < len(rs); {
		if rs[i] == ' ' {
			i++
			continue
		}
		if !isQ(rs[i]) {
			t.Fatalf("word not quoted in %q", script)
		}
		i++
		var b strings.Builder
		for {
			if i >= len(rs) {
				t.Fatalf("unterminated in %q", script)
			}
			if isQ(rs[i]) {
				if i+1 < len(rs) && isQ(rs[i+1]) {
					b.WriteRune(rs[i])
					i += 2
					continue
				}
				i++
				break
			}
			b.WriteRune(rs[i])
			i++
		}
		out = append(out, b.String())
	}
	return out
}

// TestEveryTerminal checks, for every table entry and every nasty word,
// that the terminal process gets the command back exactly: as argv where
// the terminal takes argv, or through the parser of the string it takes.
func TestEveryTerminal(t *testing.T) {
	seen := map[string]bool{}
	for _, term := range Table {
		seen[term.OS+"/"+term.ID] = true
		for _, w := range nasty {
			argv := moatArgv(w)
			c, err := Build(term.OS, term.ID, "", fakeFinder(true), argv)
			if err != nil {
				t.Fatalf("%s/%s: %v", term.OS, term.ID, err)
			}
			var got []string
			switch term.OS + "/" + term.ID {
			case "darwin/terminal":
				if c.Argv[0] != "/usr/bin/osascript" || c.Argv[4] != "activate" {
					t.Fatalf("argv %q", c.Argv)
				}
				script := strings.TrimPrefix(c.Argv[6], "do script ")
				got = shSplit(t, appleScriptUnquote(t, script))
			case "darwin/iterm2":
				script := strings.TrimPrefix(c.Argv[8], "tell current session of w to write text ")
				got = shSplit(t, appleScriptUnquote(t, script))
			case "darwin/ghostty":
				want := []string{"/usr/bin/open", "-na", "Ghostty.app", "--args", "-e"}
				if !reflect.DeepEqual(c.Argv[:5], want) {
					t.Fatalf("argv %q", c.Argv)
				}
				got = c.Argv[5:]
			case "darwin/wezterm":
				expectPrefix(t, c.Argv, "/Applications/WezTerm.app/Contents/MacOS/wezterm", "start", "--")
				got = c.Argv[3:]
			case "darwin/kitty":
				expectPrefix(t, c.Argv, "/Applications/kitty.app/Contents/MacOS/kitty")
				got = c.Argv[1:]
			case "darwin/alacritty":
				expectPrefix(t, c.Argv, "/Applications/Alacritty.app/Contents/MacOS/alacritty", "-e")
				got = c.Argv[2:]
			case "windows/wt":
				expectPrefix(t, c.Argv, "/usr/bin/wt.exe", "new-tab", "--")
				for _, a := range c.Argv[3:] {
					got = append(got, strings.ReplaceAll(a, `\;`, ";"))
					if strings.Contains(strings.ReplaceAll(a, `\;`, ""), ";") {
						t.Fatalf("unescaped ; in %q", a)
					}
				}
				// and the command line CreateProcess gets parses back
				if p := commandLineToArgv(WindowsJoin(c.Argv)); !reflect.DeepEqual(p, c.Argv) {
					t.Fatalf("wt command line %q", p)
				}
			case "windows/powershell":
				expectPrefix(t, c.Argv, "/usr/bin/pwsh.exe", "-NoLogo", "-NoExit", "-EncodedCommand")
				if !c.NewConsole || len(c.Argv) != 5 || strings.ContainsAny(c.Argv[4], " \"'") {
					t.Fatalf("argv %q", c.Argv)
				}
				got = psUnquote(t, decodePS(t, c.Argv[4]))
			case "windows/cmd":
				pre := WindowsArg("/usr/bin/cmd.exe") + " /d /k "
				if !strings.HasPrefix(c.CmdLine, pre) || !c.NewConsole {
					t.Fatalf("cmdline %q", c.CmdLine)
				}
				got = commandLineToArgv(cmdUnescape(t, strings.TrimPrefix(c.CmdLine, pre)))
			case "linux/x-terminal-emulator", "linux/konsole", "linux/alacritty", "linux/xterm":
				expectPrefix(t, c.Argv, "/usr/bin/"+term.Bins[0], "-e")
				got = c.Argv[2:]
			case "linux/gnome-terminal":
				expectPrefix(t, c.Argv, "/usr/bin/gnome-terminal", "--")
				got = c.Argv[2:]
			case "linux/xfce4-terminal":
				expectPrefix(t, c.Argv, "/usr/bin/xfce4-terminal", "-x")
				got = c.Argv[2:]
			case "linux/kitty", "linux/foot":
				expectPrefix(t, c.Argv, "/usr/bin/"+term.ID)
				got = c.Argv[1:]
			case "linux/wezterm":
				expectPrefix(t, c.Argv, "/usr/bin/wezterm", "start", "--")
				got = c.Argv[3:]
			default:
				t.Fatalf("no test for %s/%s", term.OS, term.ID)
			}
			if !reflect.DeepEqual(got, argv) {
				t.Errorf("%s/%s with %q:\n got  %q\n want %q\n (%q)", term.OS, term.ID, w, got, argv, c.Argv)
			}
		}
	}
	for _, want := range []string{"darwin/terminal", "darwin/iterm2", "darwin/ghostty", "darwin/wezterm", "darwin/kitty", "darwin/alacritty",
		"windows/wt", "windows/powershell", "windows/cmd",
		"linux/x-terminal-emulator", "linux/gnome-terminal", "linux/konsole", "linux/xfce4-terminal", "linux/kitty",
		"linux/alacritty", "linux/wezterm", "linux/foot", "linux/xterm"} {
		if !seen[want] {
			t.Errorf("terminal %s is missing from the table", want)
		}
	}
}

func expectPrefix(t *testing.T, argv []string, pre ...string) {
	t.Helper()
	if len(argv) < len(pre) || !reflect.DeepEqual(argv[:len(pre)], pre) {
		t.Fatalf("argv %q does not start with %q", argv, pre)
	}
}

// shSplit lets /bin/sh split a command line (the real parser).
func shSplit(t *testing.T, line string) []string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no /bin/sh")
	}
	out, err := exec.Command("/bin/sh", "-c", "set -- "+line+"\n"+`for a in "$@"; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

func TestCustomTemplate(t *testing.T) {
	argv := moatArgv("my 'proj' $x")
	c, err := BuildCustom(`myterm --title "Moat sandbox" -e {args}`, argv)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"myterm", "--title", "Moat sandbox", "-e"}, argv...)
	if !reflect.DeepEqual(c.Argv, want) {
		t.Errorf("{args}: %q", c.Argv)
	}
	c, err = BuildCustom(`xterm -e sh -c '{cmd}; exec sh'`, argv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Argv) != 5 || c.Argv[4] != ShellJoin(argv)+"; exec sh" {
		t.Fatalf("{cmd}: %q", c.Argv)
	}
	// the string sh -c gets runs the same argv
	if got := shSplit(t, ShellJoin(argv)); !reflect.DeepEqual(got, argv) {
		t.Errorf("{cmd} does not round-trip: %q", got)
	}
	for _, bad := range []string{"", "   ", "xterm -e", `xterm 'oops {cmd}`} {
		if _, err := BuildCustom(bad, argv); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	c, err = Build("linux", Custom, `a\ b {args}`, fakeFinder(false), []string{"x"})
	if err != nil || !reflect.DeepEqual(c.Argv, []string{"a b", "x"}) {
		t.Errorf("Build custom: %q %v", c.Argv, err)
	}
}

func TestDetection(t *testing.T) {
	f := Finder{
		LookPath: func(b string) (string, error) {
			if b == "xterm" || b == "osascript" || b == "powershell.exe" {
				return "/bin/" + b, nil
			}
			return "", errors.New("not found")
		},
		AppDirs: []string{"/Applications"},
		Stat: func(p string) (os.FileInfo, error) {
			if p == "/Applications/Terminal.app" || p == "/Applications/kitty.app" {
				return nil, nil
			}
			return nil, os.ErrNotExist
		},
	}
	lin := f.Available("linux")
	if !lin["xterm"] || lin["gnome-terminal"] || len(lin) != 9 {
		t.Errorf("linux: %v", lin)
	}
	if Default("linux", f) != "xterm" {
		t.Errorf("default linux %s", Default("linux", f))
	}
	mac := f.Available("darwin")
	if !mac["terminal"] || !mac["kitty"] || mac["iterm2"] || mac["wezterm"] || mac["ghostty"] {
		t.Errorf("darwin: %v", mac)
	}
	win := f.Available("windows")
	if !win["powershell"] || win["wt"] || win["cmd"] {
		t.Errorf("windows: %v", win)
	}
	c, err := Build("windows", "powershell", "", f, []string{"x"})
	if err != nil || c.Argv[0] != "/bin/powershell.exe" {
		t.Errorf("powershell fallback: %q %v", c.Argv, err)
	}
	if _, err := Build("linux", "konsole", "", f, []string{"x"}); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("konsole: %v", err)
	}
	if _, err := Build("linux", "nope", "", f, []string{"x"}); err == nil {
		t.Error("unknown terminal accepted")
	}
}

func TestMoatAbsolute(t *testing.T) {
	p, err := Moat()
	if err != nil || !strings.HasPrefix(p, "/") && runtime.GOOS != "windows" {
		t.Fatalf("Moat() = %q, %v", p, err)
	}
	if got := RunArgv(p, "n"); !reflect.DeepEqual(got, []string{p, "run", "n"}) {
		t.Error(got)
	}
	if got := ExecArgv(p, "n", "sh", "-c", "x"); !reflect.DeepEqual(got, []string{p, "exec", "-it", "n", "sh", "-c", "x"}) {
		t.Error(got)
	}
}

// TestLaunchRunsTheTerminal starts a real process through Exec with a
// custom template, proving the argv arrives unchanged.
func TestLaunchRunsTheTerminal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("posix")
	}
	dir := t.TempDir()
	out := dir + "/argv"
	e := &Exec{Terminal: Custom, Template: `/bin/sh -c 'for a in "$@"; do printf "%s\0" "$a"; done > "$0"' ` + ShellQuote(out) + ` {args}`}
	argv := moatArgv("we ird'$`\"name")
	if err := e.Launch(t.Context(), argv); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := 0; i < 200; i++ {
		b, _ = os.ReadFile(out)
		if bytes.Count(b, []byte{0}) == len(argv) {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if !reflect.DeepEqual(got, argv) {
		t.Errorf("got %q", got)
	}
}

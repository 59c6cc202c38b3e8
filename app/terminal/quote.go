package terminal

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// ShellQuote quotes one word for a POSIX shell: it is left alone when it
// only holds characters no shell treats specially, and otherwise wrapped in
// single quotes (inside which nothing is special) with each ' written '\”.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellJoin is argv as one POSIX shell command line that the shell splits
// back into exactly argv.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// AppleScriptString is s as an AppleScript string literal: in "..." only
// the backslash and the double quote are special.
func AppleScriptString(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// WindowsArg quotes one argument so that CommandLineToArgvW (and the MSVC
// C runtime) parses it back unchanged: backslashes are literal except
// before a double quote, where 2n+1 of them make n backslashes and a quote.
func WindowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
			continue
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
			b.WriteByte('"')
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
			b.WriteByte(c)
		}
		slashes = 0
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

// WindowsJoin is argv as a command line for CreateProcess.
func WindowsJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = WindowsArg(a)
	}
	return strings.Join(q, " ")
}

// CmdEscape makes a CreateProcess command line safe to hand to cmd.exe
// (`cmd /k LINE`): every character cmd treats specially — quotes included,
// so cmd's quote state never flips — gets a ^ in front. A ^ before % stops
// %VAR% expansion on the command line (the variable "VAR^" is not defined);
// the carets are removed before the program sees its command line, which
// it then splits with CommandLineToArgvW.
func CmdEscape(line string) string {
	var b strings.Builder
	for _, r := range line {
		if strings.ContainsRune(`()%!^"<>&|`, r) {
			b.WriteByte('^')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PowerShellQuote is s as a PowerShell verbatim (single-quoted) string.
// PowerShell accepts the typographic single quotes ‘ ’ ‚ ‛ as quote
// characters too, so each of those is doubled as well.
func PowerShellQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

// PowerShellCommand is the script that runs argv: the call operator & with
// every word a verbatim string, so nothing is expanded.
func PowerShellCommand(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = PowerShellQuote(a)
	}
	return "& " + strings.Join(q, " ")
}

// PowerShellEncoded is a script as -EncodedCommand wants it: base64 of
// UTF-16LE. It needs no quoting at all on the command line.
func PowerShellEncoded(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// splitTemplate splits a custom command template into words like a POSIX
// shell would (single quotes, double quotes with \ escapes, backslash),
// without expanding anything.
func splitTemplate(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\'':
			in = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				cur.WriteRune(rs[j])
				j++
			}
			if j == len(rs) {
				return nil, errUnterminated
			}
			i = j
		case r == '"':
			in = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[j+1]) {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j == len(rs) {
				return nil, errUnterminated
			}
			i = j
		case r == '\\' && i+1 < len(rs):
			in = true
			i++
			cur.WriteRune(rs[i])
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			in = true
			cur.WriteRune(r)
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/moatsandbox/moat/vmhost/agents"
)

// MaxNameLen keeps names usable as hostnames and directory names.
const MaxNameLen = 63

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// NameRules says what a name may be, for error messages and help.
const NameRules = "1 to 63 characters: letters, digits, '_', '.', '+' and '-', starting with a letter or digit, and not an agent name"

// ValidateName checks an explicit --name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("sandbox name is empty; a name is %s", NameRules)
	}
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return fmt.Errorf("invalid sandbox name %q: a name is %s", name, NameRules)
	}
	if _, err := agents.Lookup(name); err == nil {
		return fmt.Errorf("invalid sandbox name %q: it is an agent name (`moat run %s` starts that agent); a name is %s", name, name, NameRules)
	}
	return nil
}

// DefaultName is `<agent>-<folder>` turned into a valid name: lower case,
// every run of other characters (dots, spaces, unicode) becomes one '-',
// leading and trailing separators go, and it is cut to fit a suffix.
func DefaultName(agent, workspace string) string {
	base := sanitize(filepath.Base(workspace))
	if base == "" {
		base = "ws-" + Suffix(workspace)
	}
	n := agent + "-" + base
	if max := MaxNameLen - 7; len(n) > max { // room for "-" + 6 hex
		n = strings.TrimRight(n[:max], "-_")
	}
	return n
}

// Suffix is the stable collision suffix for a workspace: the first 6 hex
// digits of its path's SHA-256.
func Suffix(workspace string) string {
	s := sha256.Sum256([]byte(workspace))
	return hex.EncodeToString(s[:3])
}

// latinFold maps letters that do not decompose into a base letter plus marks.
var latinFold = strings.NewReplacer("ß", "ss", "æ", "ae", "œ", "oe", "ø", "o", "đ", "d", "ł", "l", "þ", "th", "ð", "d", "ı", "i")

// sanitize keeps [a-z0-9_] and folds accented Latin letters to their base
// ("Café Über" → "cafe-uber"); anything else becomes one dash.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	folded := latinFold.Replace(norm.NFD.String(strings.ToLower(s)))
	for _, r := range folded {
		if unicode.Is(unicode.Mn, r) { // a combining mark left by NFD
			continue
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.Trim(b.String(), "-_")
}

package driver

import (
	"io"
	"os"
	"regexp"
	"strings"
)

var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)

// ConsoleTail returns the last n lines of a guest console log, for error
// messages about a machine that failed to boot or stopped unexpectedly. It
// reads at most the last 64 KiB, drops terminal escape sequences, carriage
// returns and other control bytes except tabs, and returns "" when the file is missing or empty.
func ConsoleTail(path string, n int) string {
	if path == "" || n <= 0 {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	var off int64
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		off = fi.Size() - max
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, max))
	if err != nil || len(b) == 0 {
		return ""
	}
	text := strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, ansiEscape.ReplaceAllString(strings.ToValidUTF8(string(b), "\uFFFD"), ""))
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if off > 0 && len(lines) > 1 {
		lines = lines[1:] // the first line was cut in the middle
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

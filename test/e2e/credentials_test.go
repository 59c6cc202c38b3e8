//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/state"
)

// TestCredentialsStayInTheKeychain logs in with a recognisable fake key
// through a real Secret Service (build/with-keyring.sh provides a throwaway
// one), runs an agent in a real VM that sees it, and then looks for the key's
// bytes everywhere it must never be: every file under the state and runtime
// directories (disk images included), the command lines and environments of
// the daemon, supervisor and qemu processes, and the logs.
func TestCredentialsStayInTheKeychain(t *testing.T) {
	if os.Getenv("MOAT_TEST_SECRET_SERVICE") != "1" {
		if os.Getenv("MOAT_REQUIRE_KEYRING") == "1" {
			t.Fatal("MOAT_REQUIRE_KEYRING=1 but no test Secret Service: run under build/with-keyring.sh")
		}
		t.Skip("no throwaway Secret Service (run under build/with-keyring.sh)")
	}
	h := setup(t)
	raw := make([]byte, 24)
	rand.Read(raw)
	key := "sk-ant-api03-MOATLEAKTEST-" + hex.EncodeToString(raw) + "-XyZ9"
	masked := "sk-ant-…XyZ9"

	// A secret is never taken from argv.
	h.fails("never pass a secret on the command line", "login", key)
	h.fails("is empty", "login", "anthropic", "--stdin") // nothing on stdin

	r := h.moatIn(key+"\n", "login", "anthropic", "--stdin")
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, key) || !strings.Contains(r.stdout, masked) {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	st := h.ok("login", "--status")
	if strings.Contains(st, key) || !strings.Contains(st, masked) || !strings.Contains(st, "keyring") {
		t.Fatalf("status must show the key masked, from the keychain:\n%s", st)
	}

	ws := t.TempDir()
	// The shell agent gets every stored credential; the keychain wins over the
	// harness's ANTHROPIC_API_KEY environment variable.
	want := sha256.Sum256([]byte(key))
	out := h.ok("run", "shell", ws, "--", "-c", `[ -n "$ANTHROPIC_API_KEY" ] && echo KEY-IS-SET; printf %s "$ANTHROPIC_API_KEY" | sha256sum`)
	if !strings.Contains(out, "KEY-IS-SET") || !strings.Contains(out, hex.EncodeToString(want[:])) {
		t.Fatalf("the agent did not get the stored key: %q", out)
	}
	name := strings.TrimSpace(h.ok("ls", "-q"))
	if got := h.ok("exec", name, "sh", "-c", `echo "[${ANTHROPIC_API_KEY:-unset}]"`); got != "[unset]\n" {
		t.Fatalf("exec without --credentials must pass none: %q", got)
	}
	if got := h.ok("exec", "--credentials", name, "sh", "-c", `[ -n "$ANTHROPIC_API_KEY" ] && echo set`); got != "set\n" {
		t.Fatalf("exec --credentials: %q", got)
	}
	h.ok("exec", "-u", "root", name, "sync")

	l, err := state.New(h.home, "")
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{h.home, l.Runtime}
	needle := []byte(key)

	// The scanner finds a planted copy (so the test can fail), then nothing.
	plant := filepath.Join(t.TempDir(), "planted.img")
	f, _ := os.Create(plant)
	f.Truncate(64 << 20)
	f.WriteAt(needle, 40<<20)
	f.Close()
	if hits := scanTree(t, filepath.Dir(plant), needle); len(hits) != 1 {
		t.Fatalf("scanner self-check: %v", hits)
	}
	if hits := scanTree(t, dirs[0], needle); len(hits) > 0 {
		t.Errorf("the key is on disk under the state directory: %v", hits)
	}
	if hits := scanTree(t, dirs[1], needle); len(hits) > 0 {
		t.Errorf("the key is on disk under the runtime directory: %v", hits)
	}
	procs := moatProcesses(t, h.home)
	kinds := map[string]bool{}
	for pid, cmd := range procs {
		for _, what := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), what))
			if err != nil {
				continue
			}
			if bytes.Contains(b, needle) {
				t.Errorf("the key is in /proc/%d/%s (%s)", pid, what, cmd)
			}
		}
		switch {
		case strings.Contains(cmd, "qemu-system"):
			kinds["qemu"] = true
		case strings.Contains(cmd, "_supervise"):
			kinds["supervisor"] = true
		case strings.Contains(cmd, "vmhost"):
			kinds["daemon"] = true
		}
	}
	for _, k := range []string{"daemon", "supervisor", "qemu"} {
		if !kinds[k] {
			t.Errorf("no %s process found to check (found: %v)", k, procs)
		}
	}

	// Stopped, everything the guest wrote is on the disk image: still nothing.
	h.ok("stop", name)
	for _, d := range dirs {
		if hits := scanTree(t, d, needle); len(hits) > 0 {
			t.Errorf("after stop, the key is on disk: %v", hits)
		}
	}

	h.ok("logout", "anthropic")
	if st := h.ok("login", "--status"); strings.Contains(st, masked) {
		t.Fatalf("after logout the key is still listed:\n%s", st)
	}
	h.fails("no Anthropic API key is stored", "logout", "anthropic")
}

// scanTree returns the files under dir that contain needle. Sparse files
// (the 16 GiB writable disk) are read only where they hold data.
func scanTree(t *testing.T, dir string, needle []byte) []string {
	var hits []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		found, err := fileContains(p, fi.Size(), needle)
		if err != nil {
			t.Logf("scan %s: %v", p, err)
		}
		if found {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

func fileContains(p string, size int64, needle []byte) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, 4<<20)
	var off int64
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) {
				return false, nil // only a hole is left
			}
			data = off // no SEEK_DATA: read everything
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		// Read [data, hole) with an overlap so a match across chunks is seen.
		for pos := data; pos < hole; {
			n, rerr := f.ReadAt(buf, pos)
			if bytes.Contains(buf[:n], needle) {
				return true, nil
			}
			if rerr != nil && rerr != io.EOF {
				return false, rerr
			}
			if n < len(needle) {
				break
			}
			pos += int64(n - len(needle) + 1)
			if rerr == io.EOF {
				break
			}
		}
		off = hole
	}
	return false, nil
}

// moatProcesses finds the daemon, supervisors and qemu of this test's
// MOAT_HOME: processes whose environment names it, and their children.
func moatProcesses(t *testing.T, home string) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				fields := strings.Fields(string(stat[i+1:]))
				if len(fields) > 1 {
					parent[pid], _ = strconv.Atoi(fields[1])
				}
			}
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(env, []byte("MOAT_HOME="+home+"\x00")) {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out[pid] = strings.ReplaceAll(string(cmd), "\x00", " ")
		}
	}
	// qemu may run with a cleaned environment: include children of supervisors.
	for pid, pp := range parent {
		if _, ok := out[pp]; ok {
			if _, seen := out[pid]; !seen {
				cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
				out[pid] = strings.ReplaceAll(string(cmd), "\x00", " ")
			}
		}
	}
	return out
}

//go:build linux

package reaper

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartAndStatus(t *testing.T) {
	r := Default()
	for _, c := range []struct {
		script string
		code   int
		sig    int
	}{{"exit 0", 0, 0}, {"exit 3", 3, 0}, {"kill -9 $$", 137, 9}} {
		_, done, err := r.Start(func() (int, error) {
			return syscall.ForkExec("/bin/sh", []string{"sh", "-c", c.script}, &syscall.ProcAttr{})
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case st := <-done:
			code, sig := st.Code()
			if code != c.code || sig != c.sig {
				t.Errorf("%q: code %d sig %d, want %d %d", c.script, code, sig, c.code, c.sig)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: no status", c.script)
		}
	}
}

func TestOrphansReaped(t *testing.T) {
	r := Default()
	// A child started outside the reaper is reaped and counted as an orphan.
	before := r.Orphans()
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Orphans() == before {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not reaped", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRun(t *testing.T) {
	out, err := Default().Run("/bin/sh", []string{"sh", "-c", "echo hi; echo err >&2"}, nil)
	if err != nil || !strings.Contains(string(out), "hi") || !strings.Contains(string(out), "err") {
		t.Fatalf("out %q err %v", out, err)
	}
	if _, err := Default().Run("/bin/sh", []string{"sh", "-c", "echo boom; exit 2"}, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want error with output, got %v", err)
	}
}

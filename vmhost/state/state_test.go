package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHomeOverrideAndSocket(t *testing.T) {
	d := t.TempDir()
	t.Setenv(EnvHome, d)
	l, err := Default()
	if err != nil || l.Home != d {
		t.Fatalf("%+v %v", l, err)
	}
	if l.DaemonSocket() != filepath.Join(d, DaemonSocketName) {
		t.Errorf("socket %s", l.DaemonSocket())
	}
	deep, _ := New("/"+strings.Repeat("x/", 60), "")
	if len(deep.DaemonSocket()) >= maxSocketPath {
		t.Errorf("deep home socket too long: %s", deep.DaemonSocket())
	}
	s := l.Sandbox("n", "abcd1234")
	if len(s.SupervisorSocket()) >= maxSocketPath {
		t.Errorf("supervisor socket too long: %s", s.SupervisorSocket())
	}
}

func TestAtomicWriteAndLocks(t *testing.T) {
	d := t.TempDir()
	p := filepath.Join(d, "f")
	if err := WriteFileAtomic(p, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "b" {
		t.Fatalf("content %q", b)
	}
	if es, _ := os.ReadDir(d); len(es) != 1 {
		t.Fatalf("temp files left: %v", es)
	}
	lp := filepath.Join(d, "l")
	if Held(lp) {
		t.Fatal("held before lock")
	}
	l, err := TryLock(lp)
	if err != nil {
		t.Fatal(err)
	}
	if !Held(lp) {
		t.Fatal("not held")
	}
	if _, err := TryLock(lp); !errors.Is(err, ErrLocked) {
		t.Fatalf("second trylock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, lp); err == nil {
		t.Fatal("acquired a held lock")
	}
	l.Unlock()
	if Held(lp) {
		t.Fatal("held after unlock")
	}
}

//go:build !windows

package service

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExecutableKeepsPathSymlink(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "moat")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("MOAT_SERVICE_ALLOW_TEMP", "1") // the test binary lives in go-build
	old := os.Args[0]
	defer func() { os.Args[0] = old }()
	os.Args[0] = "moat"
	if got, err := Executable(); err != nil || got != link {
		t.Errorf("Executable() = %q, %v; want the PATH symlink %q", got, err, link)
	}
	os.Args[0] = "/nonexistent/moat" // not this file: fall back to os.Executable
	if got, _ := Executable(); got == link {
		t.Errorf("Executable() = %q for an unrelated argv[0]", got)
	}
	t.Setenv("MOAT_SERVICE_ALLOW_TEMP", "")
	os.Args[0] = old
	if _, err := Executable(); err == nil {
		t.Errorf("a go test binary (%s) was accepted for a service", exe)
	}
}

package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type stubDriver struct {
	name  string
	avail error
}

func (s stubDriver) Name() string               { return s.name }
func (s stubDriver) Capabilities() Capabilities { return Capabilities{} }
func (s stubDriver) Available() error           { return s.avail }
func (s stubDriver) Start(context.Context, Spec) (Machine, error) {
	return nil, errors.New("stub")
}

// withRegistry runs f with a registry holding only drivers.
func withRegistry(t *testing.T, drivers ...stubDriver) {
	t.Helper()
	regMu.Lock()
	saved := registry
	registry = map[string]func() Driver{}
	regMu.Unlock()
	t.Cleanup(func() { regMu.Lock(); registry = saved; regMu.Unlock() })
	for _, d := range drivers {
		d := d
		Register(d.name, func() Driver { return d })
	}
}

func TestRegistry(t *testing.T) {
	withRegistry(t, stubDriver{name: "zeta"}, stubDriver{name: "alpha"})
	if got := fmt.Sprint(Names()); got != "[alpha zeta]" {
		t.Errorf("Names = %s", got)
	}
	d, err := Lookup("zeta")
	if err != nil || d.Name() != "zeta" {
		t.Errorf("Lookup: %v %v", d, err)
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), `no VM driver "nope" in this build (have: [alpha zeta])`) {
		t.Errorf("Lookup missing: %v", err)
	}
}

func TestDefault(t *testing.T) {
	notHere := fmt.Errorf("%w: alpha needs a thing", ErrNotAvailable)
	withRegistry(t, stubDriver{name: "alpha", avail: notHere}, stubDriver{name: "beta"})
	d, err := Default()
	if err != nil || d.Name() != "beta" {
		t.Errorf("Default = %v, %v; want beta", d, err)
	}

	withRegistry(t, stubDriver{name: "alpha", avail: notHere}, stubDriver{name: "beta", avail: fmt.Errorf("%w: beta too", ErrNotAvailable)})
	_, err = Default()
	if !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "alpha needs a thing") || !strings.Contains(err.Error(), "beta too") {
		t.Errorf("Default with none available: %v", err)
	}

	withRegistry(t)
	if _, err := Default(); !errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), "no VM driver for this platform") {
		t.Errorf("Default with none registered: %v", err)
	}
}

func TestConsoleTail(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "console.log")
	if got := ConsoleTail(p, 5); got != "" {
		t.Errorf("missing file: %q", got)
	}
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "line %d\r\n", i)
	}
	b.WriteString("\x1b[0mlast\tone\x00\n\n")
	os.WriteFile(p, []byte(b.String()), 0o644)
	got := ConsoleTail(p, 3)
	if got != "line 29\nline 30\nlast\tone" {
		t.Errorf("tail = %q", got)
	}
	// A big file: only the end is read and the cut first line is dropped.
	big := strings.Repeat("x", 100<<10) + "\nend\n"
	os.WriteFile(p, []byte(big), 0o644)
	if got := ConsoleTail(p, 20); got != "end" {
		t.Errorf("big tail = %.40q", got)
	}
	if ConsoleTail(p, 0) != "" || ConsoleTail("", 5) != "" {
		t.Error("n=0 or no path should be empty")
	}
}

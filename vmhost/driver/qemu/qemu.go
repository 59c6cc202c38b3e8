//go:build linux || darwin

package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/moatsandbox/moat/vmhost/driver"
)

func init() {
	driver.Register("qemu", New)
}

// Options tune the driver. The zero value is what New uses.
type Options struct {
	// Accel is auto (the default), kvm, tcg or hvf. MOAT_ACCEL overrides it.
	Accel string
	// Logf receives one-line warnings (e.g. the fall-back to TCG), each at
	// most once per process. Default: a line on stderr.
	Logf func(format string, args ...any)
	// ProbeCache is the file caching the KVM probe's verdict per host boot.
	// Default <user cache dir>/moat/kvm-probe.json; "-" disables caching.
	ProbeCache string
	// StartTimeout bounds how long Start waits for qemu's QMP socket to
	// answer; default 30s (Start's ctx can end it sooner).
	StartTimeout time.Duration

	prober kvmProber // tests
}

// DefaultStartTimeout is Options.StartTimeout's default.
const DefaultStartTimeout = 30 * time.Second

type qemuDriver struct {
	opts Options
}

// New returns the QEMU driver with default options.
func New() driver.Driver { return NewWithOptions(Options{}) }

// NewWithOptions returns the QEMU driver with opts.
func NewWithOptions(opts Options) driver.Driver {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.prober == nil {
		cache := opts.ProbeCache
		switch cache {
		case "-":
			cache = ""
		case "":
			if d, err := os.UserCacheDir(); err == nil {
				cache = filepath.Join(d, "moat", "kvm-probe.json")
			}
		}
		opts.prober = &realProber{CacheFile: cache}
	}
	return &qemuDriver{opts: opts}
}

func (d *qemuDriver) Name() string { return "qemu" }

// Capabilities lists as Arches the guest architectures whose qemu binary is
// installed, host architecture first.
func (d *qemuDriver) Capabilities() driver.Capabilities {
	var arches []string
	all := make([]string, 0, len(binaries))
	for a := range binaries {
		all = append(all, a)
	}
	sort.Slice(all, func(i, j int) bool {
		if (all[i] == runtime.GOARCH) != (all[j] == runtime.GOARCH) {
			return all[i] == runtime.GOARCH
		}
		return all[i] < all[j]
	})
	for _, a := range all {
		if _, err := findBinary(a); err == nil {
			arches = append(arches, a)
		}
	}
	return driver.Capabilities{
		Arches:         arches,
		Shares:         []driver.ShareKind{driver.Share9P},
		Channel:        driver.ChannelVirtioSerial,
		InProcess:      false,
		DiskFormats:    []string{"raw"},
		ReadOnlyShares: true,
	}
}

// Available reports whether qemu for the host's architecture is installed.
func (d *qemuDriver) Available() error {
	_, err := findBinary(runtime.GOARCH)
	return err
}

var (
	warnMu   sync.Mutex
	warnSeen = map[string]bool{}
)

func (d *qemuDriver) warn(msg string) {
	warnMu.Lock()
	seen := warnSeen[msg]
	warnSeen[msg] = true
	warnMu.Unlock()
	if seen {
		return
	}
	if d.opts.Logf != nil {
		d.opts.Logf("%s", msg)
		return
	}
	fmt.Fprintln(os.Stderr, msg)
}

// resolveAccel applies MOAT_ACCEL and Options.Accel for a guest arch.
func (d *qemuDriver) resolveAccel(arch, binary string) (string, error) {
	req, source := d.opts.Accel, "Options.Accel"
	if v, ok := os.LookupEnv(EnvAccel); ok && v != "" {
		req, source = v, EnvAccel
	}
	ch, err := chooseAccel(req, source, hostInfo{GOOS: runtime.GOOS, HostArch: runtime.GOARCH, GuestArch: arch, Binary: binary}, d.opts.prober)
	if err != nil {
		return "", err
	}
	if ch.Warning != "" {
		d.warn(ch.Warning)
	}
	return ch.Accel, nil
}

// Start boots a machine and returns once QMP reports it running.
func (d *qemuDriver) Start(ctx context.Context, spec driver.Spec) (driver.Machine, error) {
	spec, err := normalize(spec, runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	binary, err := findBinary(spec.Arch)
	if err != nil {
		return nil, err
	}
	accel, err := d.resolveAccel(spec.Arch, binary)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("qemu: run directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(spec.ConsoleLog), 0o755); err != nil {
		return nil, fmt.Errorf("qemu: console log directory: %w", err)
	}
	for _, f := range []string{QMPSocket, AgentSocket, PIDFile} {
		os.Remove(filepath.Join(spec.RunDir, f))
	}
	for _, dk := range spec.Disks {
		if _, err := os.Stat(dk.Path); err != nil {
			return nil, fmt.Errorf("qemu: disk %s: %w", dk.ID, err)
		}
	}
	for _, s := range spec.Shares {
		if fi, err := os.Stat(s.HostPath); err != nil {
			return nil, fmt.Errorf("qemu: share %s: %w", s.Tag, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("qemu: share %s: %s is not a directory", s.Tag, s.HostPath)
		}
	}
	logf, err := os.OpenFile(filepath.Join(spec.RunDir, QEMULog), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	defer logf.Close()

	args := buildArgs(spec, accel)
	cmd := exec.Command(binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = procAttr()

	m := &machine{
		spec:   spec,
		layout: layoutFor(spec),
		accel:  accel,
		binary: binary,
		args:   args,
		state:  driver.StateStarting,
		done:   make(chan struct{}),
	}
	if err := m.spawn(cmd); err != nil {
		return nil, fmt.Errorf("qemu: cannot start %s: %w", binary, err)
	}
	if err := m.waitReady(ctx, d.opts.StartTimeout); err != nil {
		m.Kill()
		<-m.done
		return nil, err
	}
	return m, nil
}

// exitError describes how qemu ended; nil for status 0.
func exitError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("qemu was killed (signal %d, %v)", int(ws.Signal()), ws.Signal())
		}
		return fmt.Errorf("qemu exited with status %d", ee.ExitCode())
	}
	return fmt.Errorf("qemu: %w", err)
}

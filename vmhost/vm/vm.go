// Package vm assembles one sandbox VM from its parts: guest assets, a
// template base disk, the sandbox's writable disk and its workspaces. Boot
// starts it through any driver.Driver, connects to the guest agent, sends the
// guest its configuration and waits until the guest is ready. Stop powers it
// off gracefully, escalating to the hypervisor and then to a kill.
//
// The supervisor uses this package for real sandboxes; the driver
// conformance suite and the benchmarks use it too, so all three exercise the
// same boot path.
package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Disk IDs used in driver.Spec and protocol.Config.
const (
	DiskBase    = "moat-base"
	DiskData    = "moat-data"
	DiskModules = "moat-modules"
)

// DefaultDataDiskSize is the sparse size of a new writable disk.
const DefaultDataDiskSize = 16 << 30

// Workspace is a host folder shared into the guest at the same absolute path.
type Workspace struct {
	HostPath string // absolute, symlink-resolved
	ReadOnly bool
}

// Options describe one boot.
type Options struct {
	Name      string // sandbox name; also the guest hostname
	Assets    *assets.Set
	BaseDisk  string // read-only ext4 root; default Assets.BasePath()
	DataDisk  string // writable disk; created sparse when missing
	DataSize  int64  // size for a new DataDisk; default DefaultDataDiskSize
	CPUs      int    // default 2
	MemoryMiB int    // default 2048
	// Workspaces are mounted at their host paths.
	Workspaces []Workspace
	Network    bool
	// AgentUID is the guest agent user's uid: the host user's, so the
	// user's workspace files are the agent's. 0 means the default, 1000
	// (use it when the host user is root).
	AgentUID uint32
	// RunDir holds sockets (keep it short); ConsoleLog the serial console.
	RunDir     string
	ConsoleLog string
	// ReadyTimeout bounds the wait for the guest agent (default 3 min, TCG is slow).
	ReadyTimeout time.Duration
	// Progress, when set, is told each boot phase ("preparing disk", "booting", "waiting for the agent").
	Progress func(phase string)
}

// VM is a booted sandbox VM.
type VM struct {
	Machine driver.Machine
	Agent   *agentclient.Client
	Ready   *protocol.Ready
	// BootTime is wall time from Start to Ready, measured on the host.
	BootTime time.Duration
	opts     Options
}

// Boot starts a VM and returns when its agent is ready. On failure nothing
// keeps running, and the error carries the end of the guest console.
func Boot(ctx context.Context, d driver.Driver, o Options) (*VM, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	progress("preparing disk")
	if err := ensureDataDisk(o.DataDisk, o.DataSize); err != nil {
		return nil, err
	}
	spec := driver.Spec{
		Name:       o.Name,
		Arch:       o.Assets.Arch,
		CPUs:       o.CPUs,
		MemoryMiB:  o.MemoryMiB,
		Kernel:     o.Assets.KernelPath(),
		Initrd:     o.Assets.InitrdPath(),
		Network:    o.Network,
		RunDir:     o.RunDir,
		ConsoleLog: o.ConsoleLog,
		Disks: []driver.Disk{
			{ID: DiskBase, Path: o.BaseDisk, ReadOnly: true, Format: "raw"},
			{ID: DiskData, Path: o.DataDisk, Format: "raw"},
			{ID: DiskModules, Path: o.Assets.ModulesPath(), ReadOnly: true, Format: "raw"},
		},
	}
	for i, w := range o.Workspaces {
		spec.Shares = append(spec.Shares, driver.Share{Tag: fmt.Sprintf("ws%d", i), HostPath: w.HostPath, ReadOnly: w.ReadOnly})
	}
	if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return nil, err
	}
	progress("booting")
	start := time.Now()
	m, err := d.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	v := &VM{Machine: m, opts: o}
	fail := func(err error) (*VM, error) {
		m.Kill()
		<-m.Done()
		// Driver errors may already quote the console; don't repeat it.
		if tail := driver.ConsoleTail(o.ConsoleLog, 20); tail != "" && !strings.Contains(err.Error(), tail) {
			err = fmt.Errorf("%w\nlast lines of the guest console (%s):\n%s", err, o.ConsoleLog, tail)
		}
		return nil, err
	}
	progress("waiting for the agent")
	rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	// Give up early if the VM dies while we wait.
	go func() {
		select {
		case <-m.Done():
			cancel()
		case <-rctx.Done():
		}
	}()
	conn, err := m.DialAgent(rctx)
	if err != nil {
		return fail(bootErr(m, fmt.Errorf("connect to guest agent: %w", err)))
	}
	cl, err := agentclient.New(conn)
	if err != nil {
		return fail(err)
	}
	layout := m.Layout()
	cfg := &protocol.Config{
		Hostname:     o.Name,
		TimeUnixNano: time.Now().UnixNano(),
		Root: &protocol.RootConfig{
			Base: layout.Disks[DiskBase],
			Data: layout.Disks[DiskData],
		},
		Network:  layout.Network,
		Mounts:   layout.Mounts,
		AgentUID: o.AgentUID,
	}
	if md, ok := layout.Disks[DiskModules]; ok {
		cfg.Modules = &md
	}
	ready, err := cl.Hello(rctx, cfg)
	if err != nil {
		cl.Close()
		return fail(bootErr(m, fmt.Errorf("guest did not become ready: %w", err)))
	}
	v.Agent = cl
	v.Ready = ready
	v.BootTime = time.Since(start)
	return v, nil
}

func bootErr(m driver.Machine, err error) error {
	select {
	case <-m.Done():
		if e := m.Err(); e != nil {
			return fmt.Errorf("VM stopped during boot (%v): %w", e, err)
		}
		return fmt.Errorf("VM powered off during boot: %w", err)
	default:
		return err
	}
}

// Stop powers the VM off: the guest agent first (clean unmount), then the
// hypervisor's power button, then a kill. It returns when the VM is gone.
func (v *VM) Stop(ctx context.Context) error {
	m := v.Machine
	select {
	case <-m.Done():
		return nil
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(driver.StopTimeout)
	}
	budget := time.Until(deadline)
	// Phase 1: ask the guest.
	if v.Agent != nil {
		sctx, cancel := context.WithTimeout(ctx, budget/2)
		err := v.Agent.Shutdown(sctx, 3*time.Second)
		if err == nil {
			select {
			case <-m.Done():
			case <-sctx.Done():
			}
		}
		cancel()
		v.Agent.Close()
	}
	select {
	case <-m.Done():
		return nil
	default:
	}
	// Phase 2: the hypervisor's power button.
	hctx, cancel := context.WithTimeout(ctx, time.Until(deadline))
	defer cancel()
	if err := m.Shutdown(hctx); err == nil {
		return nil
	}
	// Phase 3: kill.
	m.Kill()
	<-m.Done()
	return nil
}

func (o *Options) fill() error {
	if o.Assets == nil {
		a, err := assets.Find(runtime.GOARCH)
		if err != nil {
			return err
		}
		o.Assets = a
	}
	if o.BaseDisk == "" {
		o.BaseDisk = o.Assets.BasePath()
	}
	if o.DataDisk == "" || o.RunDir == "" || o.ConsoleLog == "" {
		return errors.New("vm: DataDisk, RunDir and ConsoleLog are required")
	}
	if o.DataSize == 0 {
		o.DataSize = DefaultDataDiskSize
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	if o.Name == "" {
		o.Name = "moat"
	}
	for _, w := range o.Workspaces {
		if !filepath.IsAbs(w.HostPath) {
			return fmt.Errorf("vm: workspace %q is not absolute", w.HostPath)
		}
	}
	return nil
}

// ensureDataDisk creates a sparse, blank disk (the guest formats it on first
// boot) unless one exists.
func ensureDataDisk(path string, size int64) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create writable disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("size writable disk: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

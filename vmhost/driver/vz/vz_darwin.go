//go:build darwin && cgo && !no_vz

package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	vzlib "github.com/Code-Hex/vz/v3"

	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

func init() { driver.Register("vz", New) }

// New returns the vz driver.
func New() driver.Driver { return vzDriver{} }

type vzDriver struct{}

func (vzDriver) Name() string { return "vz" }

func (vzDriver) Capabilities() driver.Capabilities {
	return driver.Capabilities{
		Arches:                  []string{runtime.GOARCH},
		Shares:                  []driver.ShareKind{driver.ShareVirtiofs},
		Channel:                 driver.ChannelVsock,
		InProcess:               true,
		DiskFormats:             []string{"raw"},
		NeedsUncompressedKernel: runtime.GOARCH == "arm64",
		ReadOnlyShares:          true,
	}
}

func (vzDriver) Available() error {
	// NewVirtioSocketDeviceConfiguration needs macOS 11; Stop needs 12.
	if _, err := vzlib.NewVirtioSocketDeviceConfiguration(); err != nil {
		if errors.Is(err, vzlib.ErrUnsupportedOSVersion) {
			return fmt.Errorf("%w: Virtualization.framework needs macOS 12 or newer", driver.ErrNotAvailable)
		}
		return fmt.Errorf("%w: %v", driver.ErrNotAvailable, err)
	}
	return nil
}

func (d vzDriver) Start(ctx context.Context, spec driver.Spec) (driver.Machine, error) {
	if spec.Arch != "" && spec.Arch != runtime.GOARCH {
		return nil, fmt.Errorf("vz boots %s guests only on this Mac, not %s", runtime.GOARCH, spec.Arch)
	}
	console := "hvc0"
	cmdline := strings.Join(append([]string{"console=" + console, "panic=-1", "quiet", "loglevel=4"}, spec.KernelArgs...), " ")
	boot, err := vzlib.NewLinuxBootLoader(spec.Kernel, vzlib.WithCommandLine(cmdline), vzlib.WithInitrd(spec.Initrd))
	if err != nil {
		return nil, fmt.Errorf("vz boot loader: %w", err)
	}
	cfg, err := vzlib.NewVirtualMachineConfiguration(boot, uint(spec.CPUs), uint64(spec.MemoryMiB)<<20)
	if err != nil {
		return nil, fmt.Errorf("vz configuration: %w", err)
	}

	// Serial console → log file.
	att, err := vzlib.NewFileSerialPortAttachment(spec.ConsoleLog, false)
	if err != nil {
		return nil, fmt.Errorf("console log %s: %w", spec.ConsoleLog, err)
	}
	serial, err := vzlib.NewVirtioConsoleDeviceSerialPortConfiguration(att)
	if err != nil {
		return nil, err
	}
	cfg.SetSerialPortsVirtualMachineConfiguration([]*vzlib.VirtioConsoleDeviceSerialPortConfiguration{serial})

	// Disks, identified to the guest by their block device identifier (virtio serial).
	var storage []vzlib.StorageDeviceConfiguration
	layout := driver.Layout{Disks: map[string]protocol.Disk{}}
	for i, dk := range spec.Disks {
		a, err := vzlib.NewDiskImageStorageDeviceAttachmentWithCacheAndSync(dk.Path, dk.ReadOnly,
			vzlib.DiskImageCachingModeCached, vzlib.DiskImageSynchronizationModeFsync)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", dk.Path, err)
		}
		blk, err := vzlib.NewVirtioBlockDeviceConfiguration(a)
		if err != nil {
			return nil, err
		}
		serialID := dk.ID
		if err := blk.SetBlockDeviceIdentifier(serialID); err != nil {
			serialID = "" // macOS < 12.3: fall back to position
		}
		storage = append(storage, blk)
		layout.Disks[dk.ID] = protocol.Disk{Serial: serialID, Index: i}
	}
	cfg.SetStorageDevicesVirtualMachineConfiguration(storage)

	// Shares over virtiofs, read-only enforced by the framework.
	var shares []vzlib.DirectorySharingDeviceConfiguration
	for _, s := range spec.Shares {
		dir, err := vzlib.NewSharedDirectory(s.HostPath, s.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("share %s: %w", s.HostPath, err)
		}
		single, err := vzlib.NewSingleDirectoryShare(dir)
		if err != nil {
			return nil, err
		}
		fs, err := vzlib.NewVirtioFileSystemDeviceConfiguration(s.Tag)
		if err != nil {
			return nil, fmt.Errorf("share tag %q: %w", s.Tag, err)
		}
		fs.SetDirectoryShare(single)
		shares = append(shares, fs)
		layout.Mounts = append(layout.Mounts, protocol.Mount{Type: protocol.MountVirtiofs, Tag: s.Tag, Path: s.HostPath, ReadOnly: s.ReadOnly})
	}
	cfg.SetDirectorySharingDevicesVirtualMachineConfiguration(shares)

	// NAT network: vmnet's NAT hands out addresses by DHCP, so the guest
	// leases its own (the guest's DHCP client is exercised under QEMU's
	// user network; on vmnet it has not run: docs/platforms.md).
	if spec.Network {
		layout.Network = &protocol.Network{Interface: "eth0", DHCP: true}
		nat, err := vzlib.NewNATNetworkDeviceAttachment()
		if err != nil {
			return nil, err
		}
		nic, err := vzlib.NewVirtioNetworkDeviceConfiguration(nat)
		if err != nil {
			return nil, err
		}
		if mac, err := vzlib.NewRandomLocallyAdministeredMACAddress(); err == nil {
			nic.SetMACAddress(mac)
		}
		cfg.SetNetworkDevicesVirtualMachineConfiguration([]*vzlib.VirtioNetworkDeviceConfiguration{nic})
	}

	entropy, err := vzlib.NewVirtioEntropyDeviceConfiguration()
	if err == nil {
		cfg.SetEntropyDevicesVirtualMachineConfiguration([]*vzlib.VirtioEntropyDeviceConfiguration{entropy})
	}
	sock, err := vzlib.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		return nil, err
	}
	cfg.SetSocketDevicesVirtualMachineConfiguration([]vzlib.SocketDeviceConfiguration{sock})

	if ok, err := cfg.Validate(); !ok || err != nil {
		if err != nil && strings.Contains(err.Error(), "entitlement") {
			return nil, fmt.Errorf("the moat binary lacks the com.apple.security.virtualization entitlement; sign it with `codesign --entitlements build/darwin/vz.entitlements -s - bin/moat`: %w", err)
		}
		return nil, fmt.Errorf("vz rejected the VM configuration: %v", err)
	}
	v, err := vzlib.NewVirtualMachine(cfg)
	if err != nil {
		return nil, err
	}
	m := &machine{vm: v, layout: layout, done: make(chan struct{}), state: driver.StateStarting}
	go m.watch()
	if err := v.Start(); err != nil {
		return nil, fmt.Errorf("start VM: %w", err)
	}
	m.setState(driver.StateRunning)
	return m, nil
}

type machine struct {
	vm     *vzlib.VirtualMachine
	layout driver.Layout

	mu    sync.Mutex
	state driver.State
	err   error
	done  chan struct{}
	once  sync.Once
}

func (m *machine) setState(s driver.State) {
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
}

func (m *machine) watch() {
	for st := range m.vm.StateChangedNotify() {
		switch st {
		case vzlib.VirtualMachineStateStopped:
			m.finish(nil)
			return
		case vzlib.VirtualMachineStateError:
			m.finish(errors.New("Virtualization.framework reported the VM in an error state"))
			return
		case vzlib.VirtualMachineStateStopping:
			m.setState(driver.StateStopping)
		case vzlib.VirtualMachineStateRunning:
			m.setState(driver.StateRunning)
		}
	}
}

func (m *machine) finish(err error) {
	m.once.Do(func() {
		m.mu.Lock()
		m.state = driver.StateStopped
		m.err = err
		m.mu.Unlock()
		close(m.done)
	})
}

func (m *machine) Layout() driver.Layout { return m.layout }

func (m *machine) DialAgent(ctx context.Context) (net.Conn, error) {
	devs := m.vm.SocketDevices()
	if len(devs) == 0 {
		return nil, errors.New("VM has no vsock device")
	}
	for {
		c, err := devs[0].Connect(protocol.VsockPort)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("guest agent on vsock port %d: %w (last error: %v)", protocol.VsockPort, ctx.Err(), err)
		case <-m.done:
			return nil, errors.New("VM stopped before its agent answered")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *machine) Shutdown(ctx context.Context) error {
	if m.vm.CanRequestStop() {
		if _, err := m.vm.RequestStop(); err != nil {
			return err
		}
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *machine) Kill() error {
	if !m.vm.CanStop() {
		return nil
	}
	err := m.vm.Stop()
	if err == nil {
		m.finish(errors.New("VM was stopped forcibly"))
	}
	return err
}

func (m *machine) Done() <-chan struct{} { return m.done }

func (m *machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *machine) Info() driver.Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return driver.Info{Driver: "vz", Accel: "hvf", State: m.state}
}

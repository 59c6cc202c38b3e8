// Package driver is the contract between the VM host and a hypervisor.
//
// A Driver boots a Machine from a Spec. Three implementations are planned:
// qemu (Linux, a child process), vz (macOS, Virtualization.framework, the VM
// lives inside the calling process) and hcs (Windows, Host Compute Service).
// What differs between them is declared as data in Capabilities, so the
// layers above (supervisor, sandbox assembly) never switch on a driver name.
//
// Drivers register themselves from init functions behind build tags; the
// supervisor picks one with Lookup or Default.
package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// ShareKind is how a host folder reaches the guest.
type ShareKind string

const (
	Share9P       ShareKind = protocol.Mount9P       // QEMU virtio-9p
	ShareVirtiofs ShareKind = protocol.MountVirtiofs // vz, QEMU with virtiofsd
	SharePlan9HCS ShareKind = "plan9-hcs"            // HCS Plan9 over vsock
)

// ChannelKind is the transport of the guest agent channel.
type ChannelKind string

const (
	ChannelVirtioSerial ChannelKind = "virtio-serial"
	ChannelVsock        ChannelKind = "vsock"
	ChannelHvsock       ChannelKind = "hvsock"
)

// Capabilities describe what a driver offers. They are data: callers decide
// from them, never from the driver's name.
type Capabilities struct {
	// Arches the driver can boot on this host (GOARCH names of the guest).
	Arches []string `json:"arches"`
	// Shares lists share mechanisms in order of preference.
	Shares []ShareKind `json:"shares"`
	// Channel is the guest agent transport.
	Channel ChannelKind `json:"channel"`
	// InProcess is true when the VM runs inside the process that called Start
	// (vz): that process must stay alive for the VM's lifetime and is the only
	// one that can reach the guest channel, so it must relay it.
	InProcess bool `json:"in_process"`
	// DiskFormats accepted for Spec.Disks ("raw", "vhdx").
	DiskFormats []string `json:"disk_formats"`
	// NeedsUncompressedKernel is true when the kernel must be a raw Image (vz on arm64).
	NeedsUncompressedKernel bool `json:"needs_uncompressed_kernel"`
	// ReadOnlyShares is true when the hypervisor itself can refuse writes to a
	// share (enforced on the host side, not only by the guest's mount flags).
	ReadOnlyShares bool `json:"read_only_shares"`
}

// Disk is a block device attached to the machine.
type Disk struct {
	// ID names the disk; drivers that can set a virtio serial use it verbatim,
	// so the guest finds the disk by it.
	ID       string
	Path     string
	ReadOnly bool
	Format   string // "raw" unless the driver says otherwise
}

// Share is a host folder exported to the guest.
type Share struct {
	Tag      string // mount tag; unique per machine, ≤ 31 bytes
	HostPath string // absolute, symlink-resolved
	ReadOnly bool
}

// Spec describes one machine to boot. All paths are absolute.
type Spec struct {
	Name       string // sandbox name, for logs and hypervisor-visible names
	Arch       string // guest GOARCH; empty means the host's
	CPUs       int
	MemoryMiB  int
	Kernel     string
	Initrd     string
	KernelArgs []string // appended to the driver's own command line
	Disks      []Disk
	Shares     []Share
	Network    bool // user-mode NAT network on eth0
	// RunDir holds the machine's sockets and pid files; keep it short (unix
	// socket paths are limited to ~100 bytes).
	RunDir string
	// ConsoleLog receives the guest's serial console.
	ConsoleLog string
}

// Layout is how the guest must find what the driver attached: it becomes part
// of protocol.Config.
type Layout struct {
	Disks   map[string]protocol.Disk // by Disk.ID
	Mounts  []protocol.Mount         // one per Spec.Shares, same order
	Network *protocol.Network
}

// State of a machine as seen by its driver.
type State string

const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
)

// Info is what a machine reports about itself.
type Info struct {
	Driver string `json:"driver"`
	PID    int    `json:"pid,omitempty"`   // hypervisor process, when there is one
	Accel  string `json:"accel,omitempty"` // e.g. "kvm", "tcg", "hvf"
	State  State  `json:"state"`
}

// Machine is one booted VM.
type Machine interface {
	// Layout says how the guest finds this machine's disks, shares and network.
	Layout() Layout
	// DialAgent connects to the guest agent channel. For virtio-serial there
	// is one channel: dial once per session and keep it.
	DialAgent(ctx context.Context) (net.Conn, error)
	// Shutdown asks the hypervisor for a graceful power-off (ACPI power
	// button or equivalent) and waits until the machine stops or ctx ends.
	// Callers normally first ask the guest agent to shut down.
	Shutdown(ctx context.Context) error
	// Kill stops the machine at once.
	Kill() error
	// Done is closed when the machine has stopped, for any reason.
	Done() <-chan struct{}
	// Err, after Done, says why the machine stopped (nil for a clean power-off).
	Err() error
	Info() Info
}

// Driver boots machines.
type Driver interface {
	Name() string
	Capabilities() Capabilities
	// Available returns nil when the driver can run on this host now, or an
	// error that names the fix (the package to install, the setting to change).
	Available() error
	// Start boots a machine and returns once the hypervisor runs it; the
	// guest may still be booting.
	Start(ctx context.Context, spec Spec) (Machine, error)
}

// ErrNotAvailable wraps every Available error so callers can tell "cannot run
// here" from a failure to boot.
var ErrNotAvailable = errors.New("hypervisor not available")

var (
	regMu    sync.Mutex
	registry = map[string]func() Driver{}
)

// Register makes a driver known by name. It is called from init functions.
func Register(name string, factory func() Driver) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = factory
}

// Names lists the registered drivers.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the named driver.
func Lookup(name string) (Driver, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no VM driver %q in this build (have: %v)", name, Names())
	}
	return f(), nil
}

// Default returns the first available driver registered for this platform.
func Default() (Driver, error) {
	var errs []error
	for _, n := range Names() {
		d, _ := Lookup(n)
		if err := d.Available(); err != nil {
			errs = append(errs, err)
			continue
		}
		return d, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%w: this build has no VM driver for this platform", ErrNotAvailable)
	}
	return nil, errors.Join(errs...)
}

// StopTimeout is the default time a graceful stop gets before a kill.
const StopTimeout = 20 * time.Second

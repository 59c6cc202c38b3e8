package protocol

import "fmt"

// Hello opens a session. The host sends it as the first frame of the first
// stream it opens; Config is applied once per boot (later Hellos, e.g. after a
// supervisor reconnects, get Ready with AlreadyConfigured set and their Config
// is ignored).
type Hello struct {
	Version int     `json:"version"`
	Config  *Config `json:"config,omitempty"`
}

// Config tells the guest how to assemble the sandbox. It never carries
// secrets: secrets travel only inside ExecRequest.Env.
type Config struct {
	Hostname string `json:"hostname"`
	// TimeUnixNano is the host's wall clock when the Hello was sent; the guest
	// sets its clock from it (there is no RTC sync otherwise).
	TimeUnixNano int64 `json:"time_unix_nano"`
	// Root describes the root filesystem: a read-only base joined with a
	// writable data disk by overlayfs. A nil Root keeps the initramfs as root
	// (used by driver smoke tests only).
	Root *RootConfig `json:"root,omitempty"`
	// Modules is the read-only disk holding every module of the running
	// kernel, mounted at /lib/modules/<kernel release>.
	Modules *Disk `json:"modules,omitempty"`
	// Mounts are the shared host folders, mounted at Path (the same absolute
	// path as on the host).
	Mounts []Mount `json:"mounts,omitempty"`
	// Network configures eth0; nil leaves only loopback.
	Network *Network `json:"network,omitempty"`
	// AgentUID is the uid the agent user gets; 0 means DefaultUID. The host
	// sends its own user's uid: shared folders show host ownership in the
	// guest, so this is what makes the user's files the agent's to edit.
	AgentUID uint32 `json:"agent_uid,omitempty"`
}

// RootConfig names the disks that make up the root filesystem.
type RootConfig struct {
	Base Disk `json:"base"` // read-only ext4 (template)
	Data Disk `json:"data"` // writable; formatted ext4 on first boot if blank
}

// Disk identifies a block device the way the driver attached it: by the
// virtio serial string when the hypervisor sets one (QEMU), else by its
// zero-based position among virtio disks (vz, HCS SCSI order).
type Disk struct {
	Serial string `json:"serial,omitempty"`
	Index  int    `json:"index"`
}

// Mount kinds.
const (
	Mount9P       = "9p"
	MountVirtiofs = "virtiofs"
)

// Mount is one shared folder.
type Mount struct {
	Type     string `json:"type"` // Mount9P or MountVirtiofs
	Tag      string `json:"tag"`  // the device's mount tag
	Path     string `json:"path"` // absolute guest path (same as the host's)
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Network is the IPv4 configuration of eth0: static, or by DHCP.
type Network struct {
	Interface string   `json:"interface"`         // usually "eth0"
	Address   string   `json:"address,omitempty"` // CIDR, e.g. 10.0.2.15/24; empty with DHCP
	Gateway   string   `json:"gateway,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	// DHCP asks the guest to lease its address, gateway and DNS servers
	// (Apple's vmnet NAT hands them out that way); Address, Gateway and DNS
	// are then ignored. The guest renews the lease while it runs.
	DHCP bool `json:"dhcp,omitempty"`
}

// Ready answers Hello: the guest is up, configured, and serving execs.
type Ready struct {
	Version           int     `json:"version"`
	AgentVersion      string  `json:"agent_version"`
	Kernel            string  `json:"kernel"` // uname -r
	AlreadyConfigured bool    `json:"already_configured,omitempty"`
	Timings           Timings `json:"timings"`
}

// Timings are guest-side boot milestones in milliseconds since the kernel
// started (CLOCK_BOOTTIME), so they include the kernel's own boot.
type Timings struct {
	InitStartMS     float64 `json:"init_start_ms"`     // PID 1 began
	ModulesLoadedMS float64 `json:"modules_loaded_ms"` // initramfs modules loaded
	ChannelOpenMS   float64 `json:"channel_open_ms"`   // agent channel opened
	HelloMS         float64 `json:"hello_ms"`          // Hello received
	RootReadyMS     float64 `json:"root_ready_ms"`     // overlay root mounted, switched into
	MountsReadyMS   float64 `json:"mounts_ready_ms"`   // workspaces mounted
	NetworkReadyMS  float64 `json:"network_ready_ms"`  // eth0 configured
	ReadyMS         float64 `json:"ready_ms"`          // Ready sent
}

// DefaultUser is the user an exec runs as when ExecRequest.User is empty.
// Every sandbox has it (uid 1000); the guest creates it if the template lacks it.
const (
	DefaultUser = "agent"
	DefaultUID  = 1000
)

// ExecRequest starts one process.
type ExecRequest struct {
	Argv []string `json:"argv"`
	// Env entries are KEY=VALUE. The guest adds HOME, USER, LOGNAME, SHELL,
	// PATH and TERM (TTY only) where not given.
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; empty means the user's home.
	Dir string `json:"dir,omitempty"`
	// User is a user name or numeric uid; empty means DefaultUser.
	User string `json:"user,omitempty"`
	// TTY allocates a pseudo-terminal of Size; stdout then carries the
	// terminal's output and stderr is unused.
	TTY  bool       `json:"tty,omitempty"`
	Size WindowSize `json:"size,omitempty"`
	// Stdin tells whether the host will send stdin; when false the process's
	// stdin is /dev/null (pipes) or the terminal (TTY, with no input).
	Stdin bool `json:"stdin,omitempty"`
}

// Started acknowledges an ExecRequest once the process runs.
type Started struct {
	PID int `json:"pid"`
}

// WindowSize is a terminal size in character cells.
type WindowSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Signal asks the guest to deliver a signal (Linux numbering) to the process
// (its process group when TTY).
type Signal struct {
	Signal int `json:"signal"`
}

// ExitStatus ends an exec stream. Code follows the shell convention: the exit
// status, or 128+signal when the process was killed; 126/127 when it could
// not be started (Error then says why).
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal int    `json:"signal,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Shutdown asks the guest to stop every process, sync, unmount and power off.
type Shutdown struct {
	// GraceMS is how long processes get between SIGTERM and SIGKILL.
	GraceMS int `json:"grace_ms,omitempty"`
}

// Error is the payload of FrameError.
type Error struct {
	Message string `json:"message"`
}

func (e *Error) Error() string { return "guest: " + e.Message }

// CheckVersion returns nil when the peer's version is one this build speaks.
func CheckVersion(peer int) error {
	if peer != Version {
		return fmt.Errorf("protocol version %d is not supported (this side speaks %d); rebuild the guest assets with the same moat version", peer, Version)
	}
	return nil
}

//go:build linux

package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/clock"
	"github.com/moatsandbox/moat/vmhost/guest/netcfg"
	"github.com/moatsandbox/moat/vmhost/guest/passwd"
	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// diskWait bounds how long a configured disk may take to appear.
const diskWait = 5 * time.Second

func clockMS() float64 { return clock.BootMS() }

// NinePOptions are the mount options of 9p shares. With QEMU's
// security_model=none the server creates files as the QEMU user and ignores
// ownership changes, so the host user can always read what the guest writes.
// access=client makes the guest kernel check permissions itself against the
// owner it is shown (the host user's uid, which usually is 1000 = agent).
var NinePOptions = "trans=virtio,version=9p2000.L,msize=262144,cache=none,access=client"

// Agent applies sandbox configs and shuts the VM down. It implements
// server.Configurator.
type Agent struct {
	Log     *Logger
	Reaper  *reaper.Reaper
	Release string
	// PID1 enables what only PID 1 may do (power off).
	PID1 bool

	shutdownOnce sync.Once
}

// Configure applies cfg (once per boot; the server guarantees it).
func (a *Agent) Configure(cfg *protocol.Config, t *protocol.Timings) error {
	if cfg.TimeUnixNano > 0 {
		tv := unix.NsecToTimeval(cfg.TimeUnixNano)
		if err := unix.Settimeofday(&tv); err != nil {
			a.Log.Printf("set clock: %v", err)
		}
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", cfg.Hostname, err)
		}
	}
	if cfg.Root != nil {
		start := clockMS()
		if err := SetupRoot(cfg.Root, a.Reaper, a.Log); err != nil {
			return err
		}
		t.RootReadyMS = clockMS()
		a.Log.Printf("root ready (overlay of base + data) in %.0fms", t.RootReadyMS-start)
	}
	if cfg.Modules != nil {
		dev, err := WaitDisk(*cfg.Modules, diskWait)
		if err != nil {
			return fmt.Errorf("modules disk: %w", err)
		}
		target := filepath.Join("/lib/modules", a.Release)
		if err := mount(dev, target, "ext4", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
			return fmt.Errorf("modules disk: %w", err)
		}
	}
	if cfg.Hostname != "" {
		_ = os.WriteFile("/etc/hostname", []byte(cfg.Hostname+"\n"), 0o644)
		if err := netcfg.WriteHosts("/", cfg.Hostname); err != nil {
			a.Log.Printf("write /etc/hosts: %v", err)
		}
	}
	uid := uint32(protocol.DefaultUID)
	if cfg.AgentUID != 0 {
		uid = cfg.AgentUID
	}
	if added, err := passwd.EnsureUser("/", protocol.DefaultUser, uid); err != nil {
		return fmt.Errorf("create user %s: %w", protocol.DefaultUser, err)
	} else if added {
		a.Log.Printf("created user %s (uid %d)", protocol.DefaultUser, uid)
	}
	// Shares show host ownership: the agent takes the host user's uid so the
	// user's files are its own. Kept on the writable disk; redone if it changes.
	if old, changed, err := passwd.SetUID("/", protocol.DefaultUser, uid); err != nil {
		a.Log.Printf("user %s keeps uid %d (wanted %d): %v", protocol.DefaultUser, old, uid, err)
	} else if changed {
		a.Log.Printf("user %s now has uid %d (was %d), like the host user", protocol.DefaultUser, uid, old)
	}
	start := clockMS()
	for _, m := range cfg.Mounts {
		if err := a.mountShare(m); err != nil {
			return err
		}
	}
	t.MountsReadyMS = clockMS()
	if len(cfg.Mounts) > 0 {
		a.Log.Printf("mounted %d shares in %.0fms", len(cfg.Mounts), t.MountsReadyMS-start)
	}
	start = clockMS()
	if err := netcfg.Loopback(); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if n := cfg.Network; n != nil && n.DHCP {
		// Not fatal: a sandbox without network still serves its workspace.
		l, err := netcfg.ConfigureDHCP(context.Background(), "/", n, cfg.Hostname, 15*time.Second)
		if err != nil {
			a.Log.Printf("network: %v; the sandbox has no network", err)
		} else {
			a.Log.Printf("network %s %s via %s (DHCP from %s, lease %v) ready in %.0fms", n.Interface, l.Address, l.Router, l.Server, l.Duration, clockMS()-start)
			go netcfg.MaintainLease(context.Background(), "/", n, cfg.Hostname, l, a.Log.Printf)
		}
	} else if n != nil {
		if err := netcfg.Configure("/", n); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		a.Log.Printf("network %s %s via %s ready in %.0fms", n.Interface, n.Address, n.Gateway, clockMS()-start)
	}
	t.NetworkReadyMS = clockMS()
	return nil
}

func (a *Agent) mountShare(m protocol.Mount) error {
	if !filepath.IsAbs(m.Path) || m.Tag == "" {
		return fmt.Errorf("mount %s %q at %q: need a tag and an absolute path", m.Type, m.Tag, m.Path)
	}
	var flags uintptr = unix.MS_NODEV | unix.MS_NOSUID
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	var fstype, opts string
	switch m.Type {
	case protocol.Mount9P:
		fstype, opts = "9p", NinePOptions
	case protocol.MountVirtiofs:
		fstype = "virtiofs"
	default:
		return fmt.Errorf("mount %s %s at %s: unknown share type", m.Type, m.Tag, m.Path)
	}
	if err := os.MkdirAll(m.Path, 0o755); err != nil {
		return fmt.Errorf("mount %s %s at %s: %w", m.Type, m.Tag, m.Path, err)
	}
	if err := unix.Mount(m.Tag, m.Path, fstype, flags, opts); err != nil {
		return fmt.Errorf("mount %s %s at %s: %w", m.Type, m.Tag, m.Path, err)
	}
	ro := ""
	if m.ReadOnly {
		ro = " (read-only)"
	}
	a.Log.Printf("mounted %s %s at %s%s", m.Type, m.Tag, m.Path, ro)
	return nil
}

// Shutdown stops every process (SIGTERM, grace, SIGKILL), syncs, unmounts
// everything in reverse order and powers off. As PID 1 it never returns.
func (a *Agent) Shutdown(grace time.Duration) {
	a.shutdownOnce.Do(func() { a.shutdown(grace) })
	if a.PID1 {
		select {} // a concurrent request: the first one powers off
	}
}

func (a *Agent) shutdown(grace time.Duration) {
	if !a.PID1 {
		// kill(-1) outside the VM would hit every process of the user.
		a.Log.Printf("shutdown: not PID 1; nothing to stop")
		return
	}
	a.Log.Printf("shutdown: stopping processes (grace %v)", grace)
	_ = unix.Kill(-1, unix.SIGTERM)
	if !waitNoProcesses(grace) {
		a.Log.Printf("shutdown: processes left after %v; killing", grace)
		_ = unix.Kill(-1, unix.SIGKILL)
		waitNoProcesses(time.Second)
	}
	unix.Sync()
	a.unmountAll()
	unix.Sync()
	if a.PID1 {
		PowerOff(a.Log)
	}
}

// waitNoProcesses waits until no user process but us is left, or timeout.
func waitNoProcesses(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(otherProcesses()) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otherProcesses lists user-space pids other than ours (kernel threads have
// no /proc/<pid>/exe; zombies are reaped by the reaper).
func otherProcesses() []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		if _, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err != nil {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// unmountAll unmounts shares and disks in reverse mount order. The root
// overlay cannot be unmounted while we run from it: it is remounted
// read-only (which syncs its upper layer), then the data and base disks are
// remounted read-only and detached.
func (a *Agent) unmountAll() {
	mps := mountPoints()
	skip := func(mp string) bool {
		for _, p := range []string{"/proc", "/sys", "/dev"} {
			if mp == p || strings.HasPrefix(mp, p+"/") {
				return true
			}
		}
		return mp == "/" || mp == "/run" || mp == BaseDir || mp == DataDir
	}
	for i := len(mps) - 1; i >= 0; i-- {
		if mp := mps[i]; !skip(mp) {
			a.unmount(mp)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		a.Log.Printf("shutdown: remount / read-only: %v", err)
	}
	for _, mp := range []string{DataDir, BaseDir} {
		if contains(mps, mp) {
			a.unmount(mp)
		}
	}
	a.Log.Printf("shutdown: filesystems unmounted")
}

func (a *Agent) unmount(mp string) {
	if err := unix.Unmount(mp, 0); err == nil {
		return
	}
	// Busy: make it read-only (flushes the journal), then detach lazily.
	_ = unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
		a.Log.Printf("shutdown: unmount %s: %v", mp, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mountPoints returns the mount points of /proc/self/mountinfo in order.
func mountPoints() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// unescapeMount decodes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PowerOff syncs and powers the VM off. It never returns.
func PowerOff(log *Logger) {
	unix.Sync()
	log.Printf("power off")
	for {
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
			log.Printf("power off: %v", err)
		}
		time.Sleep(time.Second)
	}
}

// Fatal logs err and powers off (PID 1 must never exit: the kernel would panic).
func (a *Agent) Fatal(err error) {
	a.Log.Printf("FATAL: %v", err)
	if !a.PID1 {
		os.Exit(1)
	}
	time.Sleep(500 * time.Millisecond)
	unix.Sync()
	PowerOff(a.Log)
}

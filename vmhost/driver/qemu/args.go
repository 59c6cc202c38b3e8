//go:build linux || darwin

package qemu

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Files the driver keeps in Spec.RunDir.
const (
	QMPSocket   = "qmp.sock"
	AgentSocket = "agent.sock"
	PIDFile     = "qemu.pid"
	QEMULog     = "qemu.log"
	ConsoleFile = "console.log" // used when Spec.ConsoleLog is empty
)

// Defaults applied by normalize when the Spec leaves them zero.
const (
	DefaultCPUs      = 1
	DefaultMemoryMiB = 512
)

// User-mode network (slirp) addresses; fixed by QEMU's defaults.
const (
	GuestAddress = "10.0.2.15/24"
	GuestGateway = "10.0.2.2"
	GuestDNS     = "10.0.2.3"
)

// maxSerial is the length limit of a virtio-blk serial (VIRTIO_BLK_ID_BYTES).
const maxSerial = 20

// maxTag is the length limit of a 9p mount tag in the Linux guest.
const maxTag = 31

// maxSocketPath is the longest unix socket path (sun_path is 108 bytes on
// Linux, 104 on macOS, both NUL-terminated).
const maxSocketPath = 103

var diskIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// esc escapes a value for a QEMU option list: a comma is written as two.
func esc(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// normalize fills defaults and checks a Spec for this driver. arch is the
// resolved guest architecture.
func normalize(spec driver.Spec, hostArch string) (driver.Spec, error) {
	if spec.Arch == "" {
		spec.Arch = hostArch
	}
	if _, ok := binaries[spec.Arch]; !ok {
		return spec, fmt.Errorf("qemu: guest architecture %q is not supported (use amd64 or arm64)", spec.Arch)
	}
	if spec.CPUs <= 0 {
		spec.CPUs = DefaultCPUs
	}
	if spec.MemoryMiB <= 0 {
		spec.MemoryMiB = DefaultMemoryMiB
	}
	if spec.Kernel == "" {
		return spec, fmt.Errorf("qemu: spec has no kernel")
	}
	for what, p := range map[string]string{"kernel": spec.Kernel, "initrd": spec.Initrd, "run directory": spec.RunDir, "console log": spec.ConsoleLog} {
		if p != "" && !filepath.IsAbs(p) {
			return spec, fmt.Errorf("qemu: %s path %q is not absolute", what, p)
		}
	}
	if spec.RunDir == "" {
		return spec, fmt.Errorf("qemu: spec has no run directory")
	}
	if spec.ConsoleLog == "" {
		spec.ConsoleLog = filepath.Join(spec.RunDir, ConsoleFile)
	}
	for _, s := range []string{QMPSocket, AgentSocket} {
		if p := filepath.Join(spec.RunDir, s); len(p) > maxSocketPath {
			return spec, fmt.Errorf("qemu: socket path %s is %d bytes, longer than the %d a unix socket allows: use a shorter run directory", p, len(p), maxSocketPath)
		}
	}
	ids := map[string]bool{}
	for _, d := range spec.Disks {
		switch {
		case d.ID == "" || len(d.ID) > maxSerial || !diskIDRe.MatchString(d.ID):
			return spec, fmt.Errorf("qemu: disk ID %q must be 1-%d characters of A-Z a-z 0-9 . _ - (it becomes the virtio serial)", d.ID, maxSerial)
		case ids[d.ID]:
			return spec, fmt.Errorf("qemu: disk ID %q is used twice", d.ID)
		case d.Format != "" && d.Format != "raw":
			return spec, fmt.Errorf("qemu: disk %s has format %q; this driver takes raw images only", d.ID, d.Format)
		case !filepath.IsAbs(d.Path):
			return spec, fmt.Errorf("qemu: disk %s path %q is not absolute", d.ID, d.Path)
		}
		ids[d.ID] = true
	}
	tags := map[string]bool{}
	for _, s := range spec.Shares {
		switch {
		case s.Tag == "" || len(s.Tag) > maxTag:
			return spec, fmt.Errorf("qemu: share tag %q must be 1-%d bytes", s.Tag, maxTag)
		case tags[s.Tag]:
			return spec, fmt.Errorf("qemu: share tag %q is used twice", s.Tag)
		case !filepath.IsAbs(s.HostPath):
			return spec, fmt.Errorf("qemu: share %s path %q is not absolute", s.Tag, s.HostPath)
		}
		tags[s.Tag] = true
	}
	return spec, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// buildArgs returns qemu's command line (without the binary) for a
// normalized spec and a resolved accelerator ("kvm", "tcg" or "hvf").
func buildArgs(spec driver.Spec, accel string) []string {
	run := func(name string) string { return filepath.Join(spec.RunDir, name) }
	a := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-name", "guest=" + esc("moat-"+spec.Name),
	}
	cpu := "max"
	if accel == "kvm" || accel == "hvf" {
		cpu = "host"
	}
	console := "ttyS0"
	switch spec.Arch {
	case "arm64":
		machine := "virt"
		if spec.CPUs > 8 {
			machine += ",gic-version=max" // GICv2 (the default) stops at 8 CPUs
		}
		a = append(a, "-machine", machine)
		console = "ttyAMA0"
	default:
		a = append(a, "-machine", "q35")
	}
	a = append(a,
		"-accel", accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(spec.CPUs),
		"-m", strconv.Itoa(spec.MemoryMiB)+"M",
		"-kernel", spec.Kernel,
	)
	if spec.Initrd != "" {
		a = append(a, "-initrd", spec.Initrd)
	}
	cmdline := append([]string{"console=" + console, "panic=-1", "quiet", "loglevel=4"}, spec.KernelArgs...)
	a = append(a, "-append", strings.Join(cmdline, " "))

	a = append(a,
		"-chardev", "file,id=con0,path="+esc(spec.ConsoleLog),
		"-serial", "chardev:con0",
		"-chardev", "socket,id=qmp0,path="+esc(run(QMPSocket))+",server=on,wait=off",
		"-mon", "chardev=qmp0,mode=control",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=agent0,path="+esc(run(AgentSocket))+",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=agent0,name="+protocol.ChannelName,
	)
	for i, d := range spec.Disks {
		id := "disk" + strconv.Itoa(i)
		a = append(a,
			"-drive", "file="+esc(d.Path)+",if=none,id="+id+",format=raw,readonly="+onOff(d.ReadOnly)+",cache=writeback,discard=unmap",
			"-device", "virtio-blk-pci,drive="+id+",serial="+esc(d.ID),
		)
	}
	for i, s := range spec.Shares {
		id := "fs" + strconv.Itoa(i)
		fsdev := "local,id=" + id + ",path=" + esc(s.HostPath) + ",security_model=none,multidevs=remap"
		if s.ReadOnly {
			fsdev += ",readonly=on"
		}
		a = append(a,
			"-fsdev", fsdev,
			"-device", "virtio-9p-pci,fsdev="+id+",mount_tag="+esc(s.Tag),
		)
	}
	if spec.Network {
		a = append(a,
			"-netdev", "user,id=net0",
			"-device", "virtio-net-pci,netdev=net0",
		)
	}
	a = append(a,
		"-device", "virtio-rng-pci",
		"-pidfile", run(PIDFile),
	)
	return a
}

// layoutFor says how the guest finds what buildArgs attached.
func layoutFor(spec driver.Spec) driver.Layout {
	l := driver.Layout{Disks: map[string]protocol.Disk{}}
	for i, d := range spec.Disks {
		l.Disks[d.ID] = protocol.Disk{Serial: d.ID, Index: i}
	}
	for _, s := range spec.Shares {
		l.Mounts = append(l.Mounts, protocol.Mount{Type: protocol.Mount9P, Tag: s.Tag, Path: s.HostPath, ReadOnly: s.ReadOnly})
	}
	if spec.Network {
		l.Network = &protocol.Network{Interface: "eth0", Address: GuestAddress, Gateway: GuestGateway, DNS: []string{GuestDNS}}
	}
	return l
}

//go:build linux || darwin

package qemu

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

func testSpec() driver.Spec {
	return driver.Spec{
		Name:       "demo",
		CPUs:       2,
		MemoryMiB:  1024,
		Kernel:     "/a/vmlinuz",
		Initrd:     "/a/initrd.gz",
		KernelArgs: []string{"moat.debug=1"},
		Disks: []driver.Disk{
			{ID: "base", Path: "/d/base.ext4", ReadOnly: true},
			{ID: "data", Path: "/d/data, 1.ext4"},
		},
		Shares: []driver.Share{
			{Tag: "ws0", HostPath: "/home/a/My Project, ünïcode"},
			{Tag: "ws1", HostPath: "/home/a/ref", ReadOnly: true},
		},
		Network:    true,
		RunDir:     "/run/m/demo",
		ConsoleLog: "/var/log/m,demo/console.log",
	}
}

// pairs turns the argument list into (flag, value) pairs; flags without a
// value get "".
func pairs(args []string) [][2]string {
	var out [][2]string
	for i := 0; i < len(args); i++ {
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, [2]string{args[i], args[i+1]})
			i++
		} else {
			out = append(out, [2]string{args[i], ""})
		}
	}
	return out
}

func has(t *testing.T, args []string, flag, value string) {
	t.Helper()
	for _, p := range pairs(args) {
		if p[0] == flag && p[1] == value {
			return
		}
	}
	t.Errorf("missing %s %q in\n%s", flag, value, strings.Join(args, "\n"))
}

func lacks(t *testing.T, args []string, flag, value string) {
	t.Helper()
	for _, p := range pairs(args) {
		if p[0] == flag && p[1] == value {
			t.Errorf("unexpected %s %q", flag, value)
		}
	}
}

func TestArgsAmd64TCG(t *testing.T) {
	spec, err := normalize(testSpec(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	a := buildArgs(spec, "tcg")
	want := []string{"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-name", "guest=moat-demo",
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024M"}
	if !reflect.DeepEqual(a[:len(want)], want) {
		t.Errorf("prefix:\n got %q\nwant %q", a[:len(want)], want)
	}
	has(t, a, "-kernel", "/a/vmlinuz")
	has(t, a, "-initrd", "/a/initrd.gz")
	has(t, a, "-append", "console=ttyS0 panic=-1 quiet loglevel=4 moat.debug=1")
	has(t, a, "-chardev", "file,id=con0,path=/var/log/m,,demo/console.log")
	has(t, a, "-serial", "chardev:con0")
	has(t, a, "-chardev", "socket,id=qmp0,path=/run/m/demo/qmp.sock,server=on,wait=off")
	has(t, a, "-mon", "chardev=qmp0,mode=control")
	has(t, a, "-device", "virtio-serial-pci,id=vser0")
	has(t, a, "-chardev", "socket,id=agent0,path=/run/m/demo/agent.sock,server=on,wait=off")
	has(t, a, "-device", "virtserialport,bus=vser0.0,chardev=agent0,name="+protocol.ChannelName)
	has(t, a, "-drive", "file=/d/base.ext4,if=none,id=disk0,format=raw,readonly=on,cache=writeback,discard=unmap")
	has(t, a, "-device", "virtio-blk-pci,drive=disk0,serial=base")
	has(t, a, "-drive", "file=/d/data,, 1.ext4,if=none,id=disk1,format=raw,readonly=off,cache=writeback,discard=unmap")
	has(t, a, "-device", "virtio-blk-pci,drive=disk1,serial=data")
	has(t, a, "-fsdev", "local,id=fs0,path=/home/a/My Project,, ünïcode,security_model=none,multidevs=remap")
	has(t, a, "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=ws0")
	has(t, a, "-fsdev", "local,id=fs1,path=/home/a/ref,security_model=none,multidevs=remap,readonly=on")
	has(t, a, "-device", "virtio-9p-pci,fsdev=fs1,mount_tag=ws1")
	has(t, a, "-netdev", "user,id=net0")
	has(t, a, "-device", "virtio-net-pci,netdev=net0")
	has(t, a, "-device", "virtio-rng-pci")
	has(t, a, "-pidfile", "/run/m/demo/qemu.pid")
}

func TestArgsAccelAndArch(t *testing.T) {
	for _, tc := range []struct {
		arch, accel, machine, cpu, console string
	}{
		{"amd64", "kvm", "q35", "host", "ttyS0"},
		{"amd64", "tcg", "q35", "max", "ttyS0"},
		{"arm64", "tcg", "virt", "max", "ttyAMA0"},
		{"arm64", "kvm", "virt", "host", "ttyAMA0"},
		{"arm64", "hvf", "virt", "host", "ttyAMA0"},
	} {
		s := testSpec()
		s.Arch = tc.arch
		s.Network = false
		s.Disks, s.Shares, s.KernelArgs = nil, nil, nil
		spec, err := normalize(s, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		a := buildArgs(spec, tc.accel)
		has(t, a, "-machine", tc.machine)
		has(t, a, "-accel", tc.accel)
		has(t, a, "-cpu", tc.cpu)
		has(t, a, "-append", "console="+tc.console+" panic=-1 quiet loglevel=4")
		lacks(t, a, "-netdev", "user,id=net0")
		for _, x := range a {
			if strings.Contains(x, "virtio-blk") || strings.Contains(x, "9p") {
				t.Errorf("%s/%s: unexpected %q", tc.arch, tc.accel, x)
			}
		}
	}
	s := testSpec()
	s.Arch, s.CPUs = "arm64", 16
	spec, _ := normalize(s, "arm64")
	has(t, buildArgs(spec, "kvm"), "-machine", "virt,gic-version=max")
}

func TestNormalizeDefaultsAndErrors(t *testing.T) {
	s := driver.Spec{Kernel: "/k", RunDir: "/r"}
	n, err := normalize(s, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if n.Arch != "arm64" || n.CPUs != DefaultCPUs || n.MemoryMiB != DefaultMemoryMiB || n.ConsoleLog != "/r/console.log" {
		t.Errorf("defaults not applied: %+v", n)
	}
	bad := map[string]func(*driver.Spec){
		"not supported":    func(s *driver.Spec) { s.Arch = "riscv64" },
		"no kernel":        func(s *driver.Spec) { s.Kernel = "" },
		"not absolute":     func(s *driver.Spec) { s.Kernel = "vmlinuz" },
		"no run directory": func(s *driver.Spec) { s.RunDir = "" },
		"shorter run":      func(s *driver.Spec) { s.RunDir = "/" + strings.Repeat("x", 100) },
		"virtio serial":    func(s *driver.Spec) { s.Disks = []driver.Disk{{ID: strings.Repeat("d", 21), Path: "/d"}} },
		"A-Z":              func(s *driver.Spec) { s.Disks = []driver.Disk{{ID: "a,b", Path: "/d"}} },
		"used twice":       func(s *driver.Spec) { s.Disks = []driver.Disk{{ID: "a", Path: "/d"}, {ID: "a", Path: "/e"}} },
		"raw images only":  func(s *driver.Spec) { s.Disks = []driver.Disk{{ID: "a", Path: "/d", Format: "qcow2"}} },
		"1-31 bytes":       func(s *driver.Spec) { s.Shares = []driver.Share{{Tag: strings.Repeat("t", 32), HostPath: "/x"}} },
		"tag \"t\" is used": func(s *driver.Spec) {
			s.Shares = []driver.Share{{Tag: "t", HostPath: "/x"}, {Tag: "t", HostPath: "/y"}}
		},
		"share t path": func(s *driver.Spec) { s.Shares = []driver.Share{{Tag: "t", HostPath: "rel"}} },
	}
	for want, mut := range bad {
		s := driver.Spec{Kernel: "/k", RunDir: "/r"}
		mut(&s)
		if _, err := normalize(s, "amd64"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	// A 20-character ID is fine.
	s.Disks = []driver.Disk{{ID: strings.Repeat("d", 20), Path: "/d", Format: "raw"}}
	if _, err := normalize(s, "amd64"); err != nil {
		t.Error(err)
	}
}

func TestLayout(t *testing.T) {
	spec, _ := normalize(testSpec(), "amd64")
	l := layoutFor(spec)
	want := driver.Layout{
		Disks: map[string]protocol.Disk{"base": {Serial: "base", Index: 0}, "data": {Serial: "data", Index: 1}},
		Mounts: []protocol.Mount{
			{Type: "9p", Tag: "ws0", Path: "/home/a/My Project, ünïcode"},
			{Type: "9p", Tag: "ws1", Path: "/home/a/ref", ReadOnly: true},
		},
		Network: &protocol.Network{Interface: "eth0", Address: "10.0.2.15/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}},
	}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("layout:\n got %+v\nwant %+v", l, want)
	}
	spec.Network = false
	if layoutFor(spec).Network != nil {
		t.Error("network without Spec.Network")
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", "a,b": "a,,b", ",,": ",,,,", "sp ace,ü": "sp ace,,ü"} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCapabilities(t *testing.T) {
	c := New().Capabilities()
	if c.Channel != driver.ChannelVirtioSerial || c.InProcess || !c.ReadOnlyShares ||
		!reflect.DeepEqual(c.Shares, []driver.ShareKind{driver.Share9P}) || !reflect.DeepEqual(c.DiskFormats, []string{"raw"}) {
		t.Errorf("capabilities: %+v", c)
	}
	if d, err := driver.Lookup("qemu"); err != nil || d.Name() != "qemu" {
		t.Errorf("registry: %v %v", d, err)
	}
}

func TestFindBinaryMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvBinary, "")
	extraDirs = func() []string { return nil }
	defer func() { extraDirs = defaultExtraDirs }()
	_, err := findBinary("arm64")
	if err == nil {
		t.Fatal("found a qemu with an empty PATH")
	}
	if !strings.Contains(err.Error(), `qemu-system-aarch64 not found: install it with "apt-get install qemu-system-arm" (Debian/Ubuntu) or "brew install qemu" (macOS)`) {
		t.Errorf("message: %v", err)
	}
	if !errorsIs(err, driver.ErrNotAvailable) {
		t.Errorf("does not wrap ErrNotAvailable: %v", err)
	}
	t.Setenv(EnvBinary, "/nonexistent/qemu-system-aarch64")
	if _, err := findBinary("arm64"); err == nil || !strings.Contains(err.Error(), "MOAT_QEMU") || !errorsIs(err, driver.ErrNotAvailable) {
		t.Errorf("override: %v", err)
	}
}

var errorsIs = errors.Is

func TestFindBinaryOverride(t *testing.T) {
	dir := t.TempDir()
	fake := dir + "/my-qemu-system-x86_64"
	if err := writeExec(fake); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, fake)
	got, err := findBinary("amd64")
	if err != nil || got != fake {
		t.Errorf("findBinary = %q, %v; want %q", got, err, fake)
	}
}

func TestStartRejectsBadAccel(t *testing.T) {
	t.Setenv(EnvAccel, "turbo")
	_, err := NewWithOptions(Options{prober: &fakeProber{}}).Start(t.Context(), driver.Spec{Kernel: "/k", RunDir: "/r", Arch: "amd64"})
	if err == nil || !strings.Contains(err.Error(), `MOAT_ACCEL="turbo" is not valid`) {
		if err != nil && strings.Contains(err.Error(), "not found") {
			t.Skip("qemu not installed")
		}
		t.Fatalf("got %v", err)
	}
}

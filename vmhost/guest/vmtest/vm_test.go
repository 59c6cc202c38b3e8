//go:build linux

package vmtest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

type vm struct {
	t       *testing.T
	cmd     *exec.Cmd
	exited  chan error
	sess    *yamux.Session
	console string
	sock    string
}

func boot(t *testing.T, set *assets.Set, data, share, roShare string) *vm {
	t.Helper()
	run := t.TempDir()
	sock := filepath.Join(run, "agent.sock")
	console := filepath.Join(run, "console.log")
	qemu, machine, tty := "qemu-system-x86_64", "q35", "ttyS0"
	if set.Arch == "arm64" {
		qemu, machine, tty = "qemu-system-aarch64", "virt", "ttyAMA0"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-machine", machine, "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024M",
		"-kernel", set.KernelPath(), "-initrd", set.InitrdPath(),
		"-append", "console=" + tty + " panic=-1 quiet loglevel=4 " + os.Getenv("MOAT_VMTEST_CMDLINE"),
		"-chardev", "file,id=con0,path=" + console, "-serial", "chardev:con0",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=agent0,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=agent0,name=" + protocol.ChannelName,
		"-drive", "file=" + set.BasePath() + ",if=none,id=d0,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=d0,serial=base",
		"-drive", "file=" + data + ",if=none,id=d1,format=raw,cache=writeback",
		"-device", "virtio-blk-pci,drive=d1,serial=data",
		"-drive", "file=" + set.ModulesPath() + ",if=none,id=d2,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=d2,serial=modules",
		"-fsdev", "local,id=fs0,path=" + share + ",security_model=none,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=fs0,mount_tag=ws0",
		"-fsdev", "local,id=fs1,path=" + roShare + ",security_model=none,multidevs=remap,readonly=on",
		"-device", "virtio-9p-pci,fsdev=fs1,mount_tag=ws1",
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
	}
	cmd := exec.Command(qemu, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vm{t: t, cmd: cmd, exited: make(chan error, 1), console: console, sock: sock}
	go func() { v.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if b, err := os.ReadFile(console); err == nil {
			t.Logf("console.log:\n%s", b)
		}
	})
	if !lateConnect {
		v.connect()
	}
	return v
}

// lateConnect makes boot return before connecting: the guest then sees EOF
// on its port and must keep reopening it until connect is called.
var lateConnect bool

func (v *vm) connect() {
	v.t.Helper()
	var conn net.Conn
	var err error
	for i := 0; i < 200; i++ {
		if conn, err = net.Dial("unix", v.sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		v.t.Fatalf("agent socket: %v", err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = os.Stderr
	if v.sess, err = yamux.Client(conn, cfg); err != nil {
		v.t.Fatal(err)
	}
}

// waitConsole waits until the console log contains s.
func (v *vm) waitConsole(s string, timeout time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(v.console); strings.Contains(string(b), s) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.t.Fatalf("console never showed %q", s)
}

func (v *vm) request(first protocol.FrameType, msg any, wait time.Duration) (net.Conn, protocol.Frame) {
	v.t.Helper()
	c, err := v.sess.Open()
	if err != nil {
		v.t.Fatal(err)
	}
	if err := protocol.WriteJSON(c, first, msg); err != nil {
		v.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	f, err := protocol.ReadFrame(c)
	if err != nil {
		v.t.Fatalf("%s: %v", first, err)
	}
	return c, f
}

type execResult struct {
	out  string
	exit protocol.ExitStatus
}

func (v *vm) exec(req protocol.ExecRequest, input ...[]byte) execResult {
	v.t.Helper()
	c, f := v.request(protocol.FrameExec, req, 60*time.Second)
	defer c.Close()
	var out bytes.Buffer
	for _, in := range input {
		protocol.WriteFrame(c, protocol.FrameStdin, in)
	}
	if len(input) > 0 {
		protocol.WriteFrame(c, protocol.FrameStdinEOF, nil)
	}
	for {
		switch f.Type {
		case protocol.FrameStdout, protocol.FrameStderr:
			out.Write(f.Payload)
		case protocol.FrameExit:
			var e protocol.ExitStatus
			f.Decode(&e)
			return execResult{out.String(), e}
		case protocol.FrameError:
			v.t.Fatalf("exec %v: error %s", req.Argv, f.Payload)
		}
		var err error
		if f, err = protocol.ReadFrame(c); err != nil {
			v.t.Fatalf("exec %v: %v", req.Argv, err)
		}
	}
}

func (v *vm) sh(user, script string) string {
	v.t.Helper()
	r := v.exec(protocol.ExecRequest{Argv: []string{"sh", "-c", script}, User: user})
	if r.exit.Code != 0 {
		v.t.Fatalf("%s: exit %+v: %s", script, r.exit, r.out)
	}
	return r.out
}

func (v *vm) shutdown() {
	v.t.Helper()
	c, f := v.request(protocol.FrameShutdown, protocol.Shutdown{GraceMS: 1000}, 30*time.Second)
	c.Close()
	if f.Type != protocol.FrameShutdownAck {
		v.t.Fatalf("shutdown answered %s", f.Type)
	}
	select {
	case <-v.exited:
	case <-time.After(60 * time.Second):
		v.t.Fatal("qemu did not exit after shutdown")
	}
}

func TestBootInQEMU(t *testing.T) {
	set, err := assets.Load(assetDir(t))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	data := filepath.Join(work, "data.img")
	if err := os.WriteFile(data, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(data, 1<<30)
	share := filepath.Join(work, "projects", "demo")
	roShare := filepath.Join(work, "ro")
	os.MkdirAll(share, 0o755)
	os.MkdirAll(roShare, 0o755)
	os.WriteFile(filepath.Join(share, "from-host.txt"), []byte("host says hi\n"), 0o644)
	// The workspace belongs to the host user; on a desktop that is typically
	// uid 1000, the guest's agent. Emulate that when the test runs as root.
	if os.Getuid() == 0 {
		os.Chown(share, 1000, 1000)
		os.Chown(filepath.Join(share, "from-host.txt"), 1000, 1000)
	}
	os.WriteFile(filepath.Join(roShare, "ro.txt"), []byte("read only\n"), 0o644)
	cfg := &protocol.Config{
		Hostname: "moat-vmtest", TimeUnixNano: time.Now().UnixNano(),
		Root:    &protocol.RootConfig{Base: protocol.Disk{Serial: "base", Index: 0}, Data: protocol.Disk{Serial: "data", Index: 1}},
		Modules: &protocol.Disk{Serial: "modules", Index: 2},
		Mounts: []protocol.Mount{
			{Type: protocol.Mount9P, Tag: "ws0", Path: share},
			{Type: protocol.Mount9P, Tag: "ws1", Path: roShare, ReadOnly: true},
		},
		// DHCP, as the vz driver asks for (QEMU's user network runs a DHCP
		// server); the QEMU driver's static configuration is covered by the
		// driver conformance suite and the e2e tests.
		Network: &protocol.Network{Interface: "eth0", DHCP: true},
	}

	start := time.Now()
	v := boot(t, set, data, share, roShare)
	c, f := v.request(protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: cfg}, 300*time.Second)
	c.Close()
	if f.Type != protocol.FrameReady {
		t.Fatalf("hello answered %s: %s", f.Type, f.Payload)
	}
	var ready protocol.Ready
	f.Decode(&ready)
	t.Logf("ready after %v wall: %+v", time.Since(start).Round(time.Millisecond), ready)
	if ready.Kernel != set.KernelRelease {
		t.Errorf("kernel %q, want %q", ready.Kernel, set.KernelRelease)
	}

	// A second hello (e.g. supervisor restart) is already configured.
	c, f = v.request(protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: cfg}, 10*time.Second)
	c.Close()
	var again protocol.Ready
	f.Decode(&again)
	if !again.AlreadyConfigured {
		t.Errorf("second hello: %+v", again)
	}

	if got := v.sh("", "id -u; id -g; pwd; echo $HOME"); got != "1000\n1000\n/home/agent\n/home/agent\n" {
		t.Errorf("default user: %q", got)
	}
	if got := v.sh("", "ulimit -n"); got != "1048576\n" {
		t.Errorf("ulimit -n: %q", got)
	}
	if got := v.sh("root", "hostname; cat /etc/resolv.conf"); got != "moat-vmtest\nnameserver 10.0.2.3\n" {
		t.Errorf("hostname/resolv: %q", got)
	}
	t.Logf("mounts:\n%s", v.sh("root", "cat /proc/mounts"))
	if got := v.sh("root", "grep -c . /proc/net/route; awk '$2==\"00000000\"{print $1, $3}' /proc/net/route"); !strings.Contains(got, "eth0 0202000A") {
		t.Errorf("default route: %q", got)
	}
	// The leased address (slirp's DHCP hands out 10.0.2.15/24 first) on eth0.
	if got := v.sh("root", "ifconfig eth0 2>/dev/null || ip -4 addr show eth0"); !strings.Contains(got, "10.0.2.15") || !(strings.Contains(got, "255.255.255.0") || strings.Contains(got, "10.0.2.15/24")) {
		t.Errorf("eth0 after DHCP: %q", got)
	}
	if b, _ := os.ReadFile(v.console); !strings.Contains(string(b), "(DHCP from 10.0.2.2") {
		t.Errorf("the console does not say the lease came by DHCP:\n%s", b)
	}
	if got := v.sh("root", "ls /lib/modules/$(uname -r)/modules.dep"); !strings.Contains(got, "modules.dep") {
		t.Errorf("modules disk: %q", got)
	}
	// Shares: host file visible; a file the agent writes is on the host and
	// readable by the host user; the read-only share refuses writes.
	got := v.sh("", "cd "+share+" && cat from-host.txt && echo made-in-guest > from-guest.txt && mkdir -p sub && echo more >> from-guest.txt && echo edit >> from-host.txt && touch sub/f && ls -lnR .")
	t.Logf("agent in share:\n%s", got)
	if !strings.Contains(got, "host says hi") {
		t.Errorf("share: %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(share, "from-guest.txt")); err != nil || string(b) != "made-in-guest\nmore\n" {
		t.Errorf("host view of guest file: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(share, "from-guest.txt")); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		t.Logf("guest-written file on host: mode %v uid %d gid %d", fi.Mode(), st.Uid, st.Gid)
	}
	if r := v.exec(protocol.ExecRequest{Argv: []string{"sh", "-c", "echo x > " + roShare + "/nope"}, User: "root"}); r.exit.Code == 0 {
		t.Errorf("write to read-only share succeeded")
	}
	// PTY size and resize.
	r := v.exec(protocol.ExecRequest{Argv: []string{"stty", "size"}, TTY: true, Size: protocol.WindowSize{Rows: 42, Cols: 132}})
	if strings.TrimSpace(r.out) != "42 132" {
		t.Errorf("pty size: %q %+v", r.out, r.exit)
	}
	// Stdin and exit codes.
	if r := v.exec(protocol.ExecRequest{Argv: []string{"cat"}, Stdin: true}, []byte("piped\n")); r.out != "piped\n" {
		t.Errorf("stdin: %q", r.out)
	}
	if r := v.exec(protocol.ExecRequest{Argv: []string{"sh", "-c", "kill -9 $$"}}); r.exit.Code != 137 {
		t.Errorf("kill -9: %+v", r.exit)
	}
	if r := v.exec(protocol.ExecRequest{Argv: []string{"does-not-exist"}}); r.exit.Code != 127 {
		t.Errorf("missing: %+v", r.exit)
	}
	// The host goes away and comes back: processes keep running, the new
	// session is already configured.
	bg, _ := v.request(protocol.FrameExec, protocol.ExecRequest{Argv: []string{"sleep", "600"}}, 30*time.Second)
	_ = bg
	v.sess.Close()
	time.Sleep(2 * time.Second)
	v.connect()
	c, f = v.request(protocol.FrameHello, protocol.Hello{Version: protocol.Version}, 30*time.Second)
	c.Close()
	var re protocol.Ready
	f.Decode(&re)
	if f.Type != protocol.FrameReady || !re.AlreadyConfigured {
		t.Fatalf("hello after reconnect: %s %s", f.Type, f.Payload)
	}
	if got := v.sh("root", "ps -o user,args | grep '[s]leep 600'"); !strings.Contains(got, "sleep 600") {
		t.Errorf("process did not survive the reconnect: %q", got)
	}

	// Persist a file on the data disk across a reboot.
	v.sh("root", "echo kept > /root/persist; sync")
	v.shutdown()
	con1, _ := os.ReadFile(v.console)
	if !strings.Contains(string(con1), "formatted data disk") {
		t.Errorf("first boot did not format the data disk")
	}

	// Second boot: the host connects only well after the guest is up.
	lateConnect = true
	v2 := boot(t, set, data, share, roShare)
	lateConnect = false
	v2.waitConsole("agent channel", 60*time.Second)
	time.Sleep(3 * time.Second)
	v2.connect()
	cfg.TimeUnixNano = time.Now().UnixNano()
	c, f = v2.request(protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: cfg}, 300*time.Second)
	c.Close()
	if f.Type != protocol.FrameReady {
		t.Fatalf("second boot hello answered %s: %s", f.Type, f.Payload)
	}
	if got := v2.sh("root", "cat /root/persist"); got != "kept\n" {
		t.Errorf("persisted file: %q", got)
	}
	v2.shutdown()
	con2, _ := os.ReadFile(v2.console)
	if strings.Contains(string(con2), "formatted data disk") {
		t.Errorf("second boot formatted the data disk again")
	}
}

// TestBootInitramfsOnly is the driver smoke-test path: no Root, the agent
// keeps the initramfs as root and still serves execs.
func TestBootInitramfsOnly(t *testing.T) {
	set, err := assets.Load(assetDir(t))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	data := filepath.Join(work, "data.img")
	os.WriteFile(data, nil, 0o644)
	os.Truncate(data, 64<<20)
	share, roShare := filepath.Join(work, "s"), filepath.Join(work, "r")
	os.MkdirAll(share, 0o755)
	os.MkdirAll(roShare, 0o755)
	v := boot(t, set, data, share, roShare)
	c, f := v.request(protocol.FrameHello, protocol.Hello{Version: protocol.Version, Config: &protocol.Config{Hostname: "smoke"}}, 300*time.Second)
	c.Close()
	if f.Type != protocol.FrameReady {
		t.Fatalf("hello answered %s: %s", f.Type, f.Payload)
	}
	// The only programs in the initramfs are /init and mke2fs: run /init,
	// which (not being PID 1) prints its usage and exits 2.
	r := v.exec(protocol.ExecRequest{Argv: []string{"/init"}})
	if r.exit.Code != 2 || !strings.Contains(r.out, "moat-guest") {
		t.Errorf("/init as agent: %+v %q", r.exit, r.out)
	}
	if r := v.exec(protocol.ExecRequest{Argv: []string{"/bin/sh"}}); r.exit.Code != 127 {
		t.Errorf("missing shell: %+v", r.exit)
	}
	v.shutdown()
}

// assetDir is MOAT_GUEST_VM_DIR, else the host architecture's directory of
// the assets the VM host would use (MOAT_GUEST_DIR, next to the binary, ...).
// Without either the test skips, or fails under MOAT_REQUIRE_VM=1.
func assetDir(t *testing.T) string {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	if dir := os.Getenv("MOAT_GUEST_VM_DIR"); dir != "" {
		return dir
	}
	set, err := assets.Find("")
	if err != nil {
		if os.Getenv("MOAT_REQUIRE_VM") == "1" {
			t.Fatalf("MOAT_REQUIRE_VM=1: %v", err)
		}
		t.Skipf("no guest assets: %v (or set MOAT_GUEST_VM_DIR)", err)
	}
	return set.Dir
}

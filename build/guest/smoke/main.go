//go:build linux

// Command smoke is a throw-away /init that checks a built initramfs and its
// disks end to end inside a VM, without the real guest agent:
//
//	go build -o /tmp/smoke ./build/guest/smoke   # CGO_ENABLED=0, GOARCH as the guest
//	go run ./build/guest -arch amd64 -out OUT -agent /tmp/smoke
//	qemu-system-x86_64 ... -kernel K -initrd I \
//	  -drive file=scratch.img,if=virtio,format=raw \
//	  -drive file=MODULES.ext4,if=virtio,format=raw,readonly=on \
//	  -drive file=BASE.ext4,if=virtio,format=raw,readonly=on
//
// It loads the modules of /etc/moat/modules in dependency order (package
// vmhost/guest/modules), formats vda with the initramfs's mke2fs exactly as
// the agent will, mounts the modules disk (vdb) at /lib/modules/<release>
// and loads a module from it, mounts the base disk (vdc) and runs its
// busybox, then prints "MOAT-SMOKE: PASS" (or FAIL) and powers off.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/modules"
)

func main() {
	err := run()
	if err != nil {
		fmt.Println("MOAT-SMOKE: FAIL:", err)
	} else {
		fmt.Println("MOAT-SMOKE: PASS")
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func step(format string, args ...any) { fmt.Printf("MOAT-SMOKE: "+format+"\n", args...) }

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func waitFor(path string) error {
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear", path)
}

func run() error {
	for _, m := range []struct{ src, dst, typ string }{{"dev", "/dev", "devtmpfs"}, {"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}} {
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %v", m.dst, err)
		}
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	release := unix.ByteSliceToString(uts.Release[:])
	root := "/lib/modules/" + release
	wanted, err := modules.ReadList("/etc/moat/modules")
	if err != nil {
		return err
	}
	paths, err := modules.Resolve(root, wanted)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for _, p := range paths {
		if err := finit(p); err != nil {
			return fmt.Errorf("finit_module %s: %v", p, err)
		}
	}
	step("kernel %s: loaded %d modules in %v: %s", release, len(paths), time.Since(t0).Round(time.Millisecond), strings.Join(names(paths), " "))

	for _, d := range []string{"/dev/vda", "/dev/vdb", "/dev/vdc"} {
		if err := waitFor(d); err != nil {
			return err
		}
	}
	mk := exec.Command("/moat/lib/ld.so", "--library-path", "/moat/lib", "/moat/bin/mke2fs", "-t", "ext4", "-F", "-q", "/dev/vda")
	mk.Env = []string{"MKE2FS_CONFIG=/moat/etc/mke2fs.conf"}
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("mke2fs: %v: %s", err, out)
	}
	os.MkdirAll("/mnt/rw", 0o755)
	if err := unix.Mount("/dev/vda", "/mnt/rw", "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount formatted vda: %v", err)
	}
	if err := os.WriteFile("/mnt/rw/hello", []byte("hi\n"), 0o644); err != nil {
		return err
	}
	step("mke2fs formatted /dev/vda; mounted ext4 read-write")

	if err := unix.Mount("/dev/vdb", root, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount modules disk: %v", err)
	}
	if err := modules.Load(root, []string{"loop", "tun"}, finit); err != nil {
		return fmt.Errorf("modules disk: %v", err)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		waitFor("/dev/loop-control")
	}
	step("modules disk mounted at %s; loaded loop and tun from it", root)

	os.MkdirAll("/mnt/base", 0o755)
	if err := unix.Mount("/dev/vdc", "/mnt/base", "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount base disk: %v", err)
	}
	sh := exec.Command("/bin/sh", "-c", "id agent && ls -ld /home/agent /tmp && ls /bin | wc -l")
	sh.SysProcAttr = &syscall.SysProcAttr{Chroot: "/mnt/base"}
	sh.Dir = "/"
	sh.Env = []string{"PATH=/bin:/sbin:/usr/bin"}
	out, err := sh.CombinedOutput()
	if err != nil {
		return fmt.Errorf("busybox sh in base disk: %v: %s", err, out)
	}
	step("base disk: %s", strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", " | "))
	return nil
}

func names(paths []string) []string {
	var n []string
	for _, p := range paths {
		n = append(n, modules.Normalize(filepath.Base(p)))
	}
	return n
}

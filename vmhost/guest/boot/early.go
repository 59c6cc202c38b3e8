//go:build linux

package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/modules"
)

type mountSpec struct {
	src, target, fstype string
	flags               uintptr
	data                string
	optional            bool
}

// earlyMounts are the pseudo filesystems every process expects.
var earlyMounts = []mountSpec{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,gid=5,mode=620", false},
	{"shm", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", false},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", true},
}

// EarlyMounts mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run (and
// cgroup2 when the kernel has it) and creates the /dev/fd style links.
func EarlyMounts(log *Logger) error {
	for _, m := range earlyMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil && !m.optional {
			return fmt.Errorf("mkdir %s: %w", m.target, err)
		}
		if err := unix.Mount(m.src, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			if m.optional {
				log.Printf("optional mount %s on %s failed: %v", m.fstype, m.target, err)
				continue
			}
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	for name, target := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		_ = os.Symlink(target, name)
	}
	return nil
}

// Release returns the running kernel's release (uname -r).
func Release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// ModulesList is where the initramfs lists the modules to load.
const ModulesList = "/etc/moat/modules"

// LoadModules loads the wanted modules of the initramfs with finit_module,
// in modules.Order's order (every module after its dependencies). A module
// that fails to load is reported but does not stop the others (an optional
// driver may not match the hardware). It returns how many files were loaded
// (or found already loaded).
//
// Loading is sequential on purpose: measured under TCG on a loaded 2-core
// host, parallel loading (one worker per vCPU) had a worse median and large
// outliers (1.3 s median vs 2 s, up to 4.8 s), likely lock-holder preemption
// of the vCPU threads; with KVM the whole phase is tens of milliseconds.
func LoadModules(release string, log *Logger) (int, error) {
	return loadModules("/", release, log)
}

// loadModule is finitModule, replaced in tests.
var loadModule = finitModule

func loadModules(sysroot, release string, log *Logger) (int, error) {
	wanted, err := modules.ReadList(filepath.Join(sysroot, ModulesList))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	root := filepath.Join(sysroot, "lib/modules", release)
	paths, err := modules.Resolve(root, wanted)
	if err != nil {
		return 0, fmt.Errorf("modules in %s: %w", root, err)
	}
	n := 0
	var failed []string
	for _, p := range paths {
		if err := loadModule(p); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", filepath.Base(p), err))
			continue
		}
		n++
	}
	if len(failed) > 0 {
		log.Printf("modules not loaded: %s", strings.Join(failed, "; "))
	}
	return n, nil
}

func finitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

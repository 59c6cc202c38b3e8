//go:build linux

package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Paths used while assembling the root. BaseDir and DataDir stay mounted
// (under /run, which moves into the new root) so shutdown can unmount them.
const (
	NewRoot = "/newroot"
	BaseDir = "/run/moat/base"
	DataDir = "/run/moat/data"
)

// mke2fs as bundled in the initramfs (see build/guest).
var (
	mke2fsLoader = "/moat/lib/ld.so"
	mke2fsArgs   = []string{"--library-path", "/moat/lib", "/moat/bin/mke2fs", "-t", "ext4", "-F", "-q",
		"-E", "lazy_itable_init=1,lazy_journal_init=1", "-L", "moat-data"}
	mke2fsEnv = []string{"MKE2FS_CONFIG=/moat/etc/mke2fs.conf", "PATH=/moat/bin"}
)

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", target, err)
	}
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s %s at %s: %w", fstype, src, target, err)
	}
	return nil
}

// SetupRoot mounts the base disk read-only and the data disk (formatting it
// when blank), joins them with overlayfs at NewRoot and switches root into it.
func SetupRoot(rc *protocol.RootConfig, r *reaper.Reaper, log *Logger) error {
	base, err := WaitDisk(rc.Base, diskWait)
	if err != nil {
		return fmt.Errorf("base disk: %w", err)
	}
	data, err := WaitDisk(rc.Data, diskWait)
	if err != nil {
		return fmt.Errorf("data disk: %w", err)
	}
	if base == data {
		return fmt.Errorf("base and data resolve to the same disk %s", base)
	}
	if err := mount(base, BaseDir, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("base disk: %w", err)
	}
	ok, err := HasExtFS(data)
	if err != nil {
		return fmt.Errorf("data disk: %w", err)
	}
	if !ok {
		blank, err := IsBlank(data)
		if err != nil {
			return fmt.Errorf("data disk: %w", err)
		}
		if !blank {
			return fmt.Errorf("data disk %s holds something that is not ext4; refusing to format it (remove the sandbox's data disk to start afresh)", data)
		}
		start := clockMS()
		if _, err := r.Run(mke2fsLoader, append([]string{mke2fsLoader}, append(mke2fsArgs, data)...), mke2fsEnv); err != nil {
			return fmt.Errorf("format data disk %s: %w", data, err)
		}
		log.Printf("formatted data disk %s (ext4) in %.0fms", data, clockMS()-start)
	}
	if err := mount(data, DataDir, "ext4", unix.MS_NOATIME, ""); err != nil {
		return fmt.Errorf("data disk: %w", err)
	}
	upper, work := filepath.Join(DataDir, "upper"), filepath.Join(DataDir, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("data disk: %w", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", BaseDir, upper, work)
	if err := mount("overlay", NewRoot, "overlay", 0, opts); err != nil {
		return err
	}
	return SwitchRoot(NewRoot, log)
}

// SwitchRoot moves /proc, /sys, /dev and /run into newRoot, frees the
// initramfs (like busybox switch_root), makes newRoot "/" and chroots into
// it. The agent keeps running from memory.
func SwitchRoot(newRoot string, log *Logger) error {
	for _, m := range []string{"/proc", "/sys", "/dev", "/run"} {
		target := filepath.Join(newRoot, m)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("switch root: mkdir %s: %w", target, err)
		}
		if err := unix.Mount(m, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("switch root: move %s: %w", m, err)
		}
	}
	if n, err := freeInitramfs(newRoot); err != nil {
		log.Printf("switch root: freeing the initramfs: %v", err)
	} else if n > 0 {
		log.Printf("switch root: freed initramfs (%d files)", n)
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch root: chdir: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch root: chdir /: %w", err)
	}
	return nil
}

// freeInitramfs deletes the initramfs's files (everything on the "/" device,
// not crossing mounts) when "/" is the kernel's rootfs (ramfs or tmpfs) and
// we are PID 1. It never touches anything else.
func freeInitramfs(keep string) (int, error) {
	if os.Getpid() != 1 {
		return 0, nil
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return 0, err
	}
	if sfs.Type != unix.RAMFS_MAGIC && sfs.Type != unix.TMPFS_MAGIC {
		return 0, fmt.Errorf("/ is not an initramfs (fs type 0x%x); not deleting", sfs.Type)
	}
	var st unix.Stat_t
	if err := unix.Lstat("/", &st); err != nil {
		return 0, err
	}
	return deleteTree("/", st.Dev, keep), nil
}

func deleteTree(dir string, dev uint64, keep string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if p == keep {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Dev != dev {
			continue // another filesystem mounted here
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			n += deleteTree(p, dev, keep)
			if err := unix.Rmdir(p); err == nil || errors.Is(err, unix.ENOENT) {
				n++
			}
			continue
		}
		if unix.Unlink(p) == nil {
			n++
		}
	}
	return n
}

//go:build linux

package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// blockDisks lists the virtio disks (vd*) under sysRoot/block in name order
// (vda … vdz, vdaa …), or the SCSI disks (sd*) when there are no virtio ones.
func blockDisks(sysRoot string) []string {
	entries, _ := os.ReadDir(filepath.Join(sysRoot, "block"))
	var vd, sd []string
	for _, e := range entries {
		switch n := e.Name(); {
		case strings.HasPrefix(n, "vd"):
			vd = append(vd, n)
		case strings.HasPrefix(n, "sd"):
			sd = append(sd, n)
		}
	}
	disks := vd
	if len(disks) == 0 {
		disks = sd
	}
	sort.Slice(disks, func(i, j int) bool {
		if len(disks[i]) != len(disks[j]) {
			return len(disks[i]) < len(disks[j])
		}
		return disks[i] < disks[j]
	})
	return disks
}

// ResolveDisk finds d among the disks of sysRoot ("/sys"): by serial when d
// has one and the hypervisor exposes serials, else by index. It returns the
// kernel name, e.g. "vdb".
func ResolveDisk(sysRoot string, d protocol.Disk) (string, error) {
	disks := blockDisks(sysRoot)
	if d.Serial != "" {
		anySerial := false
		for _, n := range disks {
			b, err := os.ReadFile(filepath.Join(sysRoot, "block", n, "serial"))
			s := strings.TrimSpace(string(b))
			if err != nil || s == "" {
				continue
			}
			anySerial = true
			if s == d.Serial {
				return n, nil
			}
		}
		if anySerial {
			return "", fmt.Errorf("no disk with serial %q (disks: %s)", d.Serial, strings.Join(disks, " "))
		}
	}
	if d.Index < 0 || d.Index >= len(disks) {
		return "", fmt.Errorf("no disk at index %d (disks: %s)", d.Index, strings.Join(disks, " "))
	}
	return disks[d.Index], nil
}

// WaitDisk retries ResolveDisk for up to timeout (virtio_blk may still be
// probing) and returns the device path, e.g. /dev/vdb.
func WaitDisk(d protocol.Disk, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := ResolveDisk("/sys", d)
		if err == nil {
			dev := "/dev/" + n
			if _, serr := os.Stat(dev); serr == nil {
				return dev, nil
			}
			err = fmt.Errorf("%s not present", dev)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IsBlank reports whether the first 64 KiB of dev are zero (a new sparse
// data disk). Anything else that is not ext4 is not ours to format.
func IsBlank(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 64*1024)
	n, err := f.ReadAt(buf, 0)
	if err != nil && n == 0 {
		return false, fmt.Errorf("read %s: %w", dev, err)
	}
	for _, b := range buf[:n] {
		if b != 0 {
			return false, nil
		}
	}
	return true, nil
}

// HasExtFS reports whether dev starts with an ext2/3/4 superblock (magic
// 0xEF53 at byte 1080).
func HasExtFS(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [2]byte
	if _, err := f.ReadAt(b[:], 1080); err != nil {
		return false, fmt.Errorf("read superblock of %s: %w", dev, err)
	}
	return b[0] == 0x53 && b[1] == 0xEF, nil
}

package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// mke2fsPackages are the Debian packages holding mke2fs and the shared
// libraries it links (e2fsprogs Pre-Depends). If a future mke2fs needs
// another library, the build fails naming it.
var mke2fsPackages = []string{"e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1", "libc6"}

// elfMachine maps GOARCH to the ELF machine of its binaries.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// resolveIn resolves p (absolute, as seen in the target system) inside the
// extracted root, following symlinks within it.
func resolveIn(root, p string) (string, bool) {
	for i := 0; i < 40; i++ {
		host := filepath.Join(root, filepath.FromSlash(p))
		fi, err := os.Lstat(host)
		if err != nil {
			// A parent may be a symlink (e.g. /lib64 -> /lib/x86_64-linux-gnu).
			dir, base := path.Split(p)
			dir = path.Clean(dir)
			if dir == "/" || dir == "." {
				return "", false
			}
			rd, ok := resolveIn(root, dir)
			if !ok {
				return "", false
			}
			rel, _ := filepath.Rel(root, rd)
			p2 := path.Join("/", filepath.ToSlash(rel), base)
			if p2 == p {
				return "", false
			}
			p = p2
			continue
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return host, true
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", false
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", false
}

// mke2fsFiles finds mke2fs, its dynamic loader and the closure of its
// DT_NEEDED libraries in the extracted packages (roots), and adds them to t
// as /moat/bin/mke2fs, /moat/lib/ld.so, /moat/lib/<soname> and
// /moat/etc/mke2fs.conf.
func mke2fsFiles(t *tree, arch string, roots []string) error {
	find := func(p string) (string, bool) {
		for _, r := range roots {
			if h, ok := resolveIn(r, p); ok {
				return h, true
			}
		}
		return "", false
	}
	bin, ok := find("/sbin/mke2fs")
	if !ok {
		if bin, ok = find("/usr/sbin/mke2fs"); !ok {
			return fmt.Errorf("no /sbin/mke2fs in e2fsprogs")
		}
	}
	conf, ok := find("/etc/mke2fs.conf")
	if !ok {
		return fmt.Errorf("no /etc/mke2fs.conf in e2fsprogs")
	}
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("mke2fs: %v", err)
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		return fmt.Errorf("mke2fs is for %v, not %s", f.Machine, arch)
	}
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return fmt.Errorf("mke2fs: PT_INTERP: %v", err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return fmt.Errorf("mke2fs has no PT_INTERP")
	}
	ld, ok := find(interp)
	if !ok {
		return fmt.Errorf("mke2fs's loader %s is in none of the packages %v", interp, mke2fsPackages)
	}
	t.fileFrom("moat/bin/mke2fs", 0o755, bin)
	t.fileFrom("moat/lib/ld.so", 0o755, ld)
	t.fileFrom("moat/etc/mke2fs.conf", 0o644, conf)

	libDirs := []string{"/lib/" + triplet[arch], "/usr/lib/" + triplet[arch], "/lib", "/usr/lib"}
	done := map[string]bool{path.Base(interp): true}
	queue, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("mke2fs: %v", err)
	}
	for len(queue) > 0 {
		sort.Strings(queue)
		so := queue[0]
		queue = queue[1:]
		if done[so] {
			continue
		}
		done[so] = true
		var host string
		for _, d := range libDirs {
			if h, ok := find(path.Join(d, so)); ok {
				host = h
				break
			}
		}
		if host == "" {
			return fmt.Errorf("mke2fs needs %s, which is in none of the packages %v; add its package to mke2fsPackages", so, mke2fsPackages)
		}
		lf, err := elf.Open(host)
		if err != nil {
			return fmt.Errorf("%s: %v", so, err)
		}
		more, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return fmt.Errorf("%s: %v", so, err)
		}
		queue = append(queue, more...)
		t.fileFrom("moat/lib/"+so, 0o755, host)
	}
	return nil
}

var triplet = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

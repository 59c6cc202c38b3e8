// Command guest builds the guest boot assets of Moat — kernel, initramfs,
// modules disk and a busybox test base disk — reproducibly, from Debian's
// packages, into the layout that vmhost/assets reads:
//
//	go run ./build/guest -arch amd64 -out DIR   # also -arch arm64, or -arch all
//
// The kernel release is pinned in build/guest/kernel.version; the modules the
// initramfs carries are listed in build/guest/modules.txt. Packages are
// fetched with apt-get download through a private apt state under the cache
// directory (-cache, default ~/.cache/moat/guest-build), so the build
// machine's apt configuration is never touched, and are cached: a second
// build runs offline in seconds and gives byte-identical outputs.
//
// See build/guest/README.md.
package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	"github.com/gofrs/flock"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/guest/modules"
)

const agentPkg = "./vmhost/guest/cmd/moat-guest"

type config struct {
	arch    string
	out     string
	cache   string
	src     string // module root
	agent   string // prebuilt agent, or "" to build agentPkg
	check   bool
	offline bool
	verbose bool
}

func main() {
	var c config
	flag.StringVar(&c.arch, "arch", runtime.GOARCH, "guest architecture: amd64, arm64 or all")
	flag.StringVar(&c.out, "out", "", "output root; assets go to OUT/<arch>/ (default <user cache dir>/moat/guest, where vmhost/assets looks)")
	flag.StringVar(&c.cache, "cache", "", "download and work cache (default <user cache dir>/moat/guest-build)")
	flag.StringVar(&c.agent, "agent", "", "use this static linux binary as /init instead of building "+agentPkg+" (\"{arch}\" in the path is replaced by the guest arch)")
	flag.StringVar(&c.src, "src", "", "source tree (default: the module root above the current directory)")
	flag.BoolVar(&c.check, "check", true, "self-check the result where the build machine can run it (mke2fs on amd64 hosts)")
	flag.BoolVar(&c.offline, "offline", false, "never run apt-get; fail if a package is not cached")
	flag.BoolVar(&c.verbose, "v", false, "log every step")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./build/guest [-arch amd64|arm64|all] [-out DIR] [-cache DIR] [-agent PATH]")
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "build/guest:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	var err error
	if c.src == "" {
		if c.src, err = moduleRoot(); err != nil {
			return err
		}
	}
	if c.cache == "" || c.out == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no user cache dir (%v); pass -cache and -out", err)
		}
		if c.cache == "" {
			c.cache = filepath.Join(d, "moat", "guest-build")
		}
		if c.out == "" {
			c.out = filepath.Join(d, "moat", "guest")
		}
	}
	if c.out, err = filepath.Abs(c.out); err != nil {
		return err
	}
	if c.cache, err = filepath.Abs(c.cache); err != nil {
		return err
	}
	if c.agent != "" {
		if c.agent, err = filepath.Abs(c.agent); err != nil {
			return err
		}
	}
	if err := need("dpkg-deb", "dpkg"); err != nil {
		return err
	}
	if !c.offline {
		if err := need("apt-get", "apt"); err != nil {
			return err
		}
	}
	archs := []string{c.arch}
	if c.arch == "all" {
		archs = []string{"amd64", "arm64"}
	}
	for _, a := range archs {
		if _, ok := triplet[a]; !ok {
			return fmt.Errorf("unsupported -arch %q (amd64, arm64 or all)", a)
		}
		start := time.Now()
		m, err := buildArch(c, a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		fmt.Printf("%s: %s in %s (%.1fs)\n", a, m.KernelRelease, filepath.Join(c.out, a), time.Since(start).Seconds())
		for _, f := range []string{m.Kernel, m.Initrd, m.Modules, m.Base} {
			st, _ := os.Stat(filepath.Join(c.out, a, f))
			fmt.Printf("  %-48s %7.1f MiB\n", f, float64(st.Size())/(1<<20))
		}
	}
	return nil
}

// need checks that a tool is on PATH, naming the Debian package if not.
func need(tool, debPkg string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%s not found: install the Debian package %s (apt-get install %s)", tool, debPkg, debPkg)
	}
	return nil
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/moatsandbox/moat")) {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run inside the moat source tree (no go.mod of github.com/moatsandbox/moat above the current directory), or pass -src")
		}
		d = p
	}
}

func buildArch(c config, arch string) (*assets.Manifest, error) {
	t0 := time.Now()
	logf := func(format string, args ...any) {
		if c.verbose {
			fmt.Fprintf(os.Stderr, "[%s %5.1fs] %s\n", arch, time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
		}
	}
	pin, err := os.ReadFile(filepath.Join(c.src, "build", "guest", "kernel.version"))
	if err != nil {
		return nil, err
	}
	version := strings.TrimSpace(string(pin))
	if version == "" || strings.ContainsAny(version, " \t\n/") {
		return nil, fmt.Errorf("build/guest/kernel.version: want one kernel ABI release like 6.1.0-57, got %q", version)
	}
	release := version + "-" + arch // Debian flavour names match GOARCH for amd64 and arm64
	listFile := filepath.Join(c.src, "build", "guest", "modules.txt")
	list, err := modules.ReadList(listFile)
	if err != nil {
		return nil, err
	}

	a := &apt{arch: arch, dir: filepath.Join(c.cache, arch), logf: logf, offline: c.offline}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, err
	}
	// One build per cache and architecture at a time (apt state, extractions).
	lock := flock.New(filepath.Join(a.dir, ".lock"))
	if ok, _ := lock.TryLock(); !ok {
		fmt.Fprintf(os.Stderr, "build/guest: %s: waiting for another build using %s\n", arch, a.dir)
		if err := lock.Lock(); err != nil {
			return nil, err
		}
	}
	defer lock.Unlock()
	if err := a.setup(); err != nil {
		return nil, err
	}

	// Kernel and its modules.
	kpkg := "linux-image-" + release
	kroot, kdeb, err := a.extract(kpkg, func(root string) error { return prepareModules(root, release) })
	if err != nil {
		return nil, err
	}
	kver, err := debVersion(kdeb)
	if err != nil {
		return nil, err
	}
	vmlinuz, err := os.ReadFile(filepath.Join(kroot, "boot", "vmlinuz-"+release))
	if err != nil {
		return nil, fmt.Errorf("%s has no vmlinuz: %v", kpkg, err)
	}
	kernel, err := kernelImage(arch, vmlinuz)
	if err != nil {
		return nil, err
	}
	modroot := filepath.Join(kroot, "lib", "modules", release)

	// The guest agent.
	agent := strings.ReplaceAll(c.agent, "{arch}", arch)
	if agent == "" {
		if agent, err = buildAgent(c, arch, logf); err != nil {
			return nil, err
		}
	}
	if err := checkStatic(agent, arch); err != nil {
		return nil, err
	}

	// mke2fs and its libraries.
	var roots []string
	for _, p := range mke2fsPackages {
		r, _, err := a.extract(p, nil)
		if err != nil {
			return nil, err
		}
		roots = append(roots, r)
	}

	logf("packages ready")
	init, wanted, err := initramfsTree(modroot, release, list, agent)
	if err != nil {
		return nil, err
	}
	if err := mke2fsFiles(init, arch, roots); err != nil {
		return nil, err
	}
	logf("initramfs: %d modules wanted: %s", len(wanted), strings.Join(wanted, " "))

	// Busybox test base.
	bbroot, _, err := a.extract("busybox-static", nil)
	if err != nil {
		return nil, err
	}
	bbpath := filepath.Join(bbroot, "bin", "busybox")
	bb, err := os.ReadFile(bbpath)
	if err != nil {
		return nil, fmt.Errorf("busybox-static: %v", err)
	}
	applets, err := busyboxApplets(bb)
	if err != nil {
		return nil, err
	}
	base := baseTree(bbpath, applets)

	mods, err := moduleTree(modroot)
	if err != nil {
		return nil, err
	}

	// Write everything.
	dir := filepath.Join(c.out, arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &assets.Manifest{Arch: arch, KernelRelease: release, KernelPackage: kver, SHA256: map[string]string{}}
	var sum string
	kname := "vmlinuz-" + release // arm64: an uncompressed Image, under Debian's name
	if arch == "amd64" {
		kname = "vmlinux-" + release // the ELF inside the bzImage
	}
	if m.Kernel, sum, err = writeOut(dir, func(string) string { return kname }, func(f *os.File) error {
		_, err := f.Write(kernel)
		return err
	}); err != nil {
		return nil, err
	}
	m.SHA256[m.Kernel] = sum
	logf("writing initramfs")
	if m.Initrd, sum, err = writeOut(dir, func(h string) string { return "initramfs-" + h[:12] + ".cpio.gz" }, func(f *os.File) error {
		return init.writeInitramfs(f)
	}); err != nil {
		return nil, err
	}
	m.SHA256[m.Initrd] = sum
	logf("writing modules disk")
	if m.Modules, sum, err = writeOut(dir, func(h string) string { return "modules-" + release + "-" + h[:12] + ".ext4" }, func(f *os.File) error {
		return ext4From(mods, f)
	}); err != nil {
		return nil, err
	}
	m.SHA256[m.Modules] = sum
	logf("writing base disk")
	if m.Base, sum, err = writeOut(dir, func(h string) string { return "base-busybox-" + h[:12] + ".ext4" }, func(f *os.File) error {
		return ext4From(base, f)
	}); err != nil {
		return nil, err
	}
	m.SHA256[m.Base] = sum
	logf("outputs written")
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	if err := atomicWrite(filepath.Join(dir, assets.ManifestName), js); err != nil {
		return nil, err
	}
	if _, err := assets.Load(dir); err != nil {
		return nil, fmt.Errorf("the manifest just written does not load: %w", err)
	}
	if c.check && arch == runtime.GOARCH && runtime.GOOS == "linux" {
		if err := checkMke2fs(init); err != nil {
			return nil, fmt.Errorf("self-check: %w", err)
		}
		logf("self-check: mke2fs from the initramfs formatted an ext4 image")
	}
	return m, nil
}

// initramfsTree assembles the initramfs: /init, the module closure of the
// wanted list with a filtered modules.dep and modules.builtin, and
// /etc/moat/modules. It returns the wanted names actually present (modules
// and built-ins); names in the list ending in '?' are optional and dropped
// if this kernel has no such module.
func initramfsTree(modroot, release string, list []string, agent string) (*tree, []string, error) {
	deps, builtin, err := modules.ReadTree(modroot)
	if err != nil {
		return nil, nil, err
	}
	var wanted []string
	seen := map[string]bool{}
	for _, w := range list {
		opt := strings.HasSuffix(w, "?")
		w = modules.Normalize(strings.TrimSuffix(w, "?"))
		if seen[w] {
			continue
		}
		if !deps.Has(w) && !builtin[w] {
			if opt {
				continue
			}
			return nil, nil, fmt.Errorf("modules.txt: %s is neither a module nor built into %s (mark it optional with a trailing '?')", w, release)
		}
		seen[w] = true
		wanted = append(wanted, w)
	}
	files, err := deps.Order(wanted, builtin)
	if err != nil {
		return nil, nil, err
	}
	t := newTree()
	t.fileFrom("init", 0o755, agent)
	for _, d := range []string{"dev", "proc", "sys", "run", "mnt", "etc", "etc/moat", "root"} {
		t.dir(d, 0o755, 0, 0)
	}
	t.dir("tmp", 0o1777, 0, 0)
	t.chardev("dev/console", 0o600, 5, 1)
	t.chardev("dev/null", 0o666, 1, 3)
	mdir := "lib/modules/" + release + "/"
	for _, f := range files {
		t.fileFrom(mdir+f, 0o644, filepath.Join(modroot, filepath.FromSlash(f)))
	}
	var dep bytes.Buffer
	if err := deps.WriteDep(&dep, files); err != nil {
		return nil, nil, err
	}
	t.file(mdir+"modules.dep", 0o644, dep.Bytes())
	var bl bytes.Buffer
	if raw, err := os.ReadFile(filepath.Join(modroot, "modules.builtin")); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if l != "" && seen[modules.Normalize(l)] {
				bl.WriteString(l + "\n")
			}
		}
	}
	t.file(mdir+"modules.builtin", 0o644, bl.Bytes())
	t.file("etc/moat/modules", 0o644, []byte(strings.Join(wanted, "\n")+"\n"))
	return t, wanted, nil
}

// buildAgent cross-compiles the guest agent, statically and reproducibly.
func buildAgent(c config, arch string, logf func(string, ...any)) (string, error) {
	if _, err := os.Stat(filepath.Join(c.src, filepath.FromSlash(agentPkg))); err != nil {
		return "", fmt.Errorf("the guest agent package %s does not exist yet in %s; pass -agent PATH to use a prebuilt static binary", agentPkg, c.src)
	}
	if err := need("go", "golang-go (or a Go toolchain on PATH)"); err != nil {
		return "", err
	}
	out := filepath.Join(c.cache, arch, "agent", "moat-guest")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	logf("go build %s for linux/%s", agentPkg, arch)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", out, agentPkg)
	cmd.Dir = c.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the guest agent: %v\n%s", err, b)
	}
	return out, nil
}

// checkStatic makes sure /init is a static Linux executable for arch.
func checkStatic(bin, arch string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("agent %s: %v", bin, err)
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		return fmt.Errorf("agent %s is for %v, not %s", bin, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agent %s is dynamically linked; build it with CGO_ENABLED=0", bin)
		}
	}
	return nil
}

// ext4From writes the tree as an ext4 image (tar2ext4, pure Go).
func ext4From(t *tree, f *os.File) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(t.writeTar(pw)) }()
	err := tar2ext4.Convert(pr, f)
	pr.CloseWithError(errors.New("ext4 conversion stopped"))
	return err
}

// writeOut writes one output file through gen into a temporary file in dir,
// names it after its hash and renames it into place. An existing file with
// that name is replaced atomically (a VM holding the old one keeps it).
func writeOut(dir string, name func(sha string) string, gen func(*os.File) error) (string, string, error) {
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return "", "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := gen(f); err != nil {
		f.Close()
		return "", "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return "", "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	final := name(sum)
	dst := filepath.Join(dir, final)
	if old, err := fileSHA(dst); err == nil && old == sum {
		return final, sum, nil // unchanged: leave the existing file (and its inode) alone
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", "", err
	}
	return final, sum, nil
}

func fileSHA(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func atomicWrite(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// checkMke2fs extracts the mke2fs files of the initramfs tree to a temporary
// directory and runs them exactly as the guest agent will.
func checkMke2fs(t *tree) error {
	dir, err := os.MkdirTemp("", "moat-mke2fs-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, e := range t.sorted() {
		if !strings.HasPrefix(e.name, "moat/") || e.typ() != sIFREG {
			continue
		}
		r, err := e.open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, os.FileMode(e.mode&0o777)); err != nil {
			return err
		}
	}
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		return err
	}
	m := filepath.Join(dir, "moat")
	cmd := exec.Command(filepath.Join(m, "lib", "ld.so"), "--library-path", filepath.Join(m, "lib"), filepath.Join(m, "bin", "mke2fs"), "-t", "ext4", "-F", "-q", img)
	cmd.Env = []string{"MKE2FS_CONFIG=" + filepath.Join(m, "etc", "mke2fs.conf"), "PATH=/nonexistent"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mke2fs from the initramfs: %v\n%s", err, out)
	}
	b := make([]byte, 2048)
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	// ext superblock at 1024: magic 0xEF53 at offset 56; has_journal in
	// s_feature_compat (offset 92, bit 0x4); extents in incompat (96, 0x40).
	sb := b[1024:]
	if sb[56] != 0x53 || sb[57] != 0xef {
		return errors.New("mke2fs from the initramfs wrote no ext superblock")
	}
	if sb[92]&0x4 == 0 || sb[96]&0x40 == 0 {
		return errors.New("mke2fs from the initramfs did not make a journaled ext4")
	}
	return nil
}

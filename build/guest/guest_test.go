package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// sampleTree is a small initramfs-like tree with every entry kind, with
// files from disk whose host mtimes and modes must not leak into images.
func sampleTree(t *testing.T) *tree {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "agent")
	if err := os.WriteFile(src, []byte("\x7fELF pretend agent"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := newTree()
	tr.fileFrom("init", 0o755, src)
	tr.file("etc/moat/modules", 0o644, []byte("virtio_pci\next4\n"))
	tr.file("lib/modules/6.1.0-57-amd64/kernel/drivers/virtio/virtio.ko", 0o644, bytes.Repeat([]byte{1, 2, 3}, 1000))
	tr.dir("tmp", 0o1777, 0, 0)
	tr.dir("home/agent", 0o755, 1000, 1000)
	tr.symlink("bin/sh", "/bin/busybox")
	tr.chardev("dev/console", 0o600, 5, 1)
	tr.file("empty", 0o644, nil)
	return tr
}

func initramfsBytes(t *testing.T, tr *tree) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := tr.writeInitramfs(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestInitramfsReproducible(t *testing.T) {
	a := initramfsBytes(t, sampleTree(t))
	// Same inputs built again, from other temp files with other mtimes.
	b := initramfsBytes(t, sampleTree(t))
	if !bytes.Equal(a, b) {
		t.Fatalf("two builds differ: %x vs %x", sha256.Sum256(a), sha256.Sum256(b))
	}
	if a[0] != 0x1f || a[1] != 0x8b {
		t.Fatal("not gzip")
	}
	if mtime := binary.LittleEndian.Uint32(a[4:8]); mtime != 0 {
		t.Fatalf("gzip header mtime %d", mtime)
	}
}

// cpioEntry is one parsed newc header.
type cpioEntry struct {
	name                       string
	mode, uid, gid, mtime      uint64
	size, rdevmajor, rdevminor uint64
	data                       string
}

func parseNewc(t *testing.T, gz []byte) []cpioEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%512 != 0 {
		t.Errorf("archive length %d not a multiple of 512", len(raw))
	}
	var out []cpioEntry
	off := 0
	pad := func(n int) int { return (n + 3) &^ 3 }
	for {
		h := raw[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		f := func(i int) uint64 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		namesize := int(f(11))
		name := string(raw[off+110 : off+110+namesize-1])
		off = pad(off + 110 + namesize)
		size := int(f(6))
		e := cpioEntry{name: name, mode: f(1), uid: f(2), gid: f(3), mtime: f(5), size: uint64(size),
			rdevmajor: f(9), rdevminor: f(10), data: string(raw[off : off+size])}
		off = pad(off + size)
		if name == "TRAILER!!!" {
			break
		}
		out = append(out, e)
	}
	return out
}

func TestInitramfsContents(t *testing.T) {
	ents := parseNewc(t, initramfsBytes(t, sampleTree(t)))
	var names []string
	by := map[string]cpioEntry{}
	for _, e := range ents {
		names = append(names, e.name)
		by[e.name] = e
		if e.mtime != 0 {
			t.Errorf("%s: mtime %d", e.name, e.mtime)
		}
	}
	want := []string{"bin", "bin/sh", "dev", "dev/console", "empty", "etc", "etc/moat", "etc/moat/modules",
		"home", "home/agent", "init", "lib", "lib/modules", "lib/modules/6.1.0-57-amd64",
		"lib/modules/6.1.0-57-amd64/kernel", "lib/modules/6.1.0-57-amd64/kernel/drivers",
		"lib/modules/6.1.0-57-amd64/kernel/drivers/virtio",
		"lib/modules/6.1.0-57-amd64/kernel/drivers/virtio/virtio.ko", "tmp"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("entries\n got %q\nwant %q", names, want)
	}
	check := func(name string, mode, uid uint64) {
		if e := by[name]; e.mode != mode || e.uid != uid || e.gid != uid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d", name, e.mode, e.uid, e.gid, mode, uid)
		}
	}
	check("init", 0o100755, 0) // host file was 0600: the tree decides
	check("tmp", 0o41777, 0)
	check("home/agent", 0o40755, 1000)
	check("bin/sh", 0o120777, 0)
	check("dev/console", 0o20600, 0)
	if e := by["dev/console"]; e.rdevmajor != 5 || e.rdevminor != 1 {
		t.Errorf("console dev %d:%d", e.rdevmajor, e.rdevminor)
	}
	if by["bin/sh"].data != "/bin/busybox" || by["init"].data != "\x7fELF pretend agent" {
		t.Error("wrong contents")
	}
	if len(by["lib/modules/6.1.0-57-amd64/kernel/drivers/virtio/virtio.ko"].data) != 3000 {
		t.Error("module size")
	}
}

// The kernel unpacks what cpio(1) reads; check with the real tool if present.
func TestInitramfsCpioTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio")
	}
	var raw bytes.Buffer
	if err := sampleTree(t).writeCpio(&raw); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = &raw
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "lib/modules/6.1.0-57-amd64/kernel/drivers/virtio/virtio.ko\n") {
		t.Fatalf("cpio -t:\n%s", out)
	}
}

func TestExt4Reproducible(t *testing.T) {
	var sums [2][32]byte
	for i := range sums {
		f, err := os.Create(filepath.Join(t.TempDir(), "img.ext4"))
		if err != nil {
			t.Fatal(err)
		}
		if err := ext4From(sampleTree(t), f); err != nil {
			t.Fatal(err)
		}
		f.Seek(0, io.SeekStart)
		b, _ := io.ReadAll(f)
		f.Close()
		sums[i] = sha256.Sum256(b)
		if len(b) < 2048 || b[1024+56] != 0x53 || b[1024+57] != 0xef {
			t.Fatal("no ext4 superblock")
		}
		if e2fsck, err := exec.LookPath("e2fsck"); err == nil {
			// tar2ext4 leaves the inode bitmap padding unset on tiny
			// images (not on real ones); that is the one finding allowed.
			out, err := exec.Command(e2fsck, "-fn", f.Name()).CombinedOutput()
			if err != nil {
				rest := strings.ReplaceAll(string(out), "Padding at end of inode bitmap is not set. Fix? no", "")
				if strings.Contains(rest, "? no") {
					t.Fatalf("e2fsck: %v\n%s", err, out)
				}
			}
		}
	}
	if sums[0] != sums[1] {
		t.Fatal("two ext4 builds differ")
	}
}

func TestBusyboxApplets(t *testing.T) {
	bb := "/bin/busybox"
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Skip("no /bin/busybox on this machine")
	}
	got, err := busyboxApplets(bin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Skip("busybox --list does not run")
	}
	want := strings.Fields(string(out))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %d applets, busybox --list has %d", len(got), len(want))
	}
}

func TestKernelImageArm64(t *testing.T) {
	img := make([]byte, 4096)
	copy(img[0x38:], "ARM\x64")
	for i := 64; i < len(img); i++ {
		img[i] = byte(i * 7)
	}
	got, err := kernelImage("arm64", img)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("plain Image: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(img)
	zw.Close()
	got, err = kernelImage("arm64", gz.Bytes())
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("gzip Image: %v", err)
	}
	// EFI zboot wrapping a gzip payload.
	z := make([]byte, 512)
	copy(z, "MZ")
	copy(z[4:], "zimg")
	binary.LittleEndian.PutUint32(z[8:], 512)
	binary.LittleEndian.PutUint32(z[12:], uint32(gz.Len()))
	copy(z[24:], "gzip")
	z = append(z, gz.Bytes()...)
	got, err = kernelImage("arm64", z)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("zboot Image: %v", err)
	}
	if _, err := kernelImage("arm64", []byte("not a kernel at all, certainly not a kernel image here......................")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/x86_64-linux-gnu"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), []byte("ld"), 0o755)
	os.Symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(root, "lib/ld-abs"))
	os.Symlink("lib", filepath.Join(root, "lib64"))
	os.Symlink("x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(root, "lib/ld-rel"))
	for _, p := range []string{"/lib/ld-abs", "/lib/ld-rel", "/lib64/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/lib64/ld-rel"} {
		h, ok := resolveIn(root, p)
		if !ok || filepath.Base(h) != "ld-linux-x86-64.so.2" {
			t.Errorf("resolveIn(%s) = %q, %v", p, h, ok)
		}
	}
	if _, ok := resolveIn(root, "/nope/x"); ok {
		t.Error("missing path resolved")
	}
}

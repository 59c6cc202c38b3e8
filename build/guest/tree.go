package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/moatsandbox/moat/build/guest/cpio"
)

// Unix file type bits, as in cpio and stat(2).
const (
	sIFMT  = cpio.TypeMask
	sIFDIR = cpio.TypeDir
	sIFREG = cpio.TypeReg
	sIFLNK = cpio.TypeLink
	sIFCHR = cpio.TypeChar
)

// entry is one file of an image being assembled. Every image (initramfs
// cpio, ext4 via tar) is built from a tree of entries, so ownership,
// permissions and timestamps are fixed by the program and never taken from
// the build machine.
type entry struct {
	name         string // relative, slash-separated, no leading "/"
	mode         uint32 // type | permission bits
	uid, gid     int
	data         []byte // regular file contents, if src == ""
	src          string // regular file contents from this host file
	link         string // symlink target
	major, minor uint32 // device numbers
}

func (e *entry) typ() uint32 { return e.mode & sIFMT }

func (e *entry) size() (int64, error) {
	if e.typ() == sIFLNK {
		return int64(len(e.link)), nil
	}
	if e.typ() != sIFREG {
		return 0, nil
	}
	if e.src == "" {
		return int64(len(e.data)), nil
	}
	st, err := os.Stat(e.src)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (e *entry) open() (io.ReadCloser, error) {
	if e.src == "" {
		return io.NopCloser(bytes.NewReader(e.data)), nil
	}
	return os.Open(e.src)
}

// tree is a set of entries keyed by name.
type tree struct{ m map[string]*entry }

func newTree() *tree { return &tree{m: map[string]*entry{}} }

func clean(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

func (t *tree) add(e *entry) {
	e.name = clean(e.name)
	if e.name == "" {
		return
	}
	t.m[e.name] = e
}

func (t *tree) dir(name string, perm uint32, uid, gid int) {
	t.add(&entry{name: name, mode: sIFDIR | perm, uid: uid, gid: gid})
}

func (t *tree) file(name string, perm uint32, data []byte) {
	t.add(&entry{name: name, mode: sIFREG | perm, data: data})
}

func (t *tree) fileFrom(name string, perm uint32, src string) {
	t.add(&entry{name: name, mode: sIFREG | perm, src: src})
}

func (t *tree) symlink(name, target string) {
	t.add(&entry{name: name, mode: sIFLNK | 0o777, link: target})
}

func (t *tree) chardev(name string, perm uint32, major, minor uint32) {
	t.add(&entry{name: name, mode: sIFCHR | perm, major: major, minor: minor})
}

// sorted returns all entries sorted by name, after adding any missing parent
// directory (root-owned, 0755). Parents sort before their children.
func (t *tree) sorted() []*entry {
	for name := range t.m {
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := t.m[d]; !ok {
				t.m[d] = &entry{name: d, mode: sIFDIR | 0o755}
			}
		}
	}
	out := make([]*entry, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// epoch is the timestamp of every file in every image (SOURCE_DATE_EPOCH 0).
var epoch = time.Unix(0, 0).UTC()

// writeTar writes the tree as a deterministic tar stream (USTAR/PAX, sorted,
// all times at the epoch, numeric owners only).
func (t *tree) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range t.sorted() {
		h := &tar.Header{
			Name:       e.name,
			Mode:       int64(e.mode &^ sIFMT),
			Uid:        e.uid,
			Gid:        e.gid,
			ModTime:    epoch,
			AccessTime: epoch,
			ChangeTime: epoch,
			Format:     tar.FormatPAX,
		}
		switch e.typ() {
		case sIFDIR:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case sIFREG:
			h.Typeflag = tar.TypeReg
			n, err := e.size()
			if err != nil {
				return err
			}
			h.Size = n
		case sIFLNK:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		case sIFCHR:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(e.major), int64(e.minor)
		default:
			return fmt.Errorf("%s: unsupported file type %o", e.name, e.typ())
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", e.name, err)
		}
		if e.typ() == sIFREG {
			r, err := e.open()
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, r)
			r.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", e.name, err)
			}
			if n != h.Size {
				return fmt.Errorf("tar %s: size changed while reading", e.name)
			}
		}
	}
	return tw.Close()
}

package template

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Flattening turns an image's layers (bottom first) into one tar stream of
// the final filesystem, ready for tar2ext4: every directory first (parents
// before children), then symlinks, then regular files in layer order, then
// hard links to files already written.
//
// We do not use mutate.Extract: it walks layers top-down, so a hard link can
// precede its target (tar2ext4 then fails), and a hard link whose target was
// later replaced or whited out ends up pointing at the wrong content or at
// nothing. Here layers are applied bottom-up to an in-memory tree (headers
// only; content stays in the layers), which is the overlayfs semantics the
// OCI image spec describes:
//   - ".wh.NAME" removes NAME (and what is under it) from lower layers;
//   - ".wh..wh..opq" in DIR hides everything lower layers put under DIR;
//   - an entry replaces what was at its path, except that a directory over a
//     directory keeps the children and takes the new metadata;
//   - a hard link shares its target's content and metadata (one inode).
//
// Device nodes and fifos are skipped (the guest's /dev is devtmpfs), as are
// names that would escape the root after cleaning.

const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// layerOpener returns a fresh uncompressed tar stream of one layer.
type layerOpener func() (io.ReadCloser, error)

// contentKey names a regular file's data: entry index within a layer.
type contentKey struct{ layer, index int }

type node struct {
	name     string // clean, relative ("etc/passwd"); "" for the root
	hdr      *tar.Header
	origin   int // layer that last set this path
	content  contentKey
	children map[string]*node
}

func (n *node) isDir() bool { return n.hdr.Typeflag == tar.TypeDir }

// tree is the filesystem being assembled.
type tree struct {
	root    *node
	skipped map[string]int // kind -> count (devices, fifos, unsafe names, dangling hard links)
}

func newTree() *tree {
	return &tree{
		root:    &node{hdr: &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}, children: map[string]*node{}},
		skipped: map[string]int{},
	}
}

// cleanName makes a tar name relative and confined to the root; "" is the root.
func cleanName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

func split(name string) []string {
	if name == "" {
		return nil
	}
	return strings.Split(name, "/")
}

// lookup returns the node at name (no symlink following) or nil.
func (t *tree) lookup(name string) *node {
	n := t.root
	for _, c := range split(name) {
		if n.children == nil {
			return nil
		}
		n = n.children[c]
		if n == nil {
			return nil
		}
	}
	return n
}

// parentFor returns the directory that will hold name, creating implicit
// directories (and replacing non-directories) on the way.
func (t *tree) parentFor(name string, layer int) *node {
	parts := split(name)
	n := t.root
	for i, c := range parts[:len(parts)-1] {
		ch := n.children[c]
		if ch == nil || !ch.isDir() {
			ch = &node{
				name:     strings.Join(parts[:i+1], "/"),
				hdr:      &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, Name: strings.Join(parts[:i+1], "/")},
				origin:   layer,
				children: map[string]*node{},
			}
			n.children[c] = ch
		}
		n = ch
	}
	return n
}

func (t *tree) remove(name string) {
	if name == "" {
		return
	}
	parts := split(name)
	n := t.lookup(strings.Join(parts[:len(parts)-1], "/"))
	if n != nil && n.children != nil {
		delete(n.children, parts[len(parts)-1])
	}
}

// hideLower removes everything under dir that came from layers below layer.
func hideLower(dir *node, layer int) {
	for k, ch := range dir.children {
		if ch.origin < layer {
			delete(dir.children, k)
			continue
		}
		if ch.isDir() {
			hideLower(ch, layer)
		}
	}
}

// apply adds one layer (index layer, bottom = 0) to the tree.
func (t *tree) apply(layer int, r io.Reader) error {
	tr := tar.NewReader(r)
	for index := 0; ; index++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %d: read tar: %w", layer+1, err)
		}
		if err := t.add(layer, index, hdr); err != nil {
			return fmt.Errorf("layer %d: %s: %w", layer+1, hdr.Name, err)
		}
	}
}

func (t *tree) add(layer, index int, hdr *tar.Header) error {
	if strings.Contains(hdr.Name, "\x00") {
		t.skipped["unsafe name"]++
		return nil
	}
	name := cleanName(hdr.Name)
	base := path.Base(name)
	dir := path.Dir(name)
	if dir == "." {
		dir = ""
	}
	switch {
	case base == opaqueWhiteout:
		if d := t.lookup(dir); d != nil && d.isDir() {
			hideLower(d, layer)
		}
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		t.remove(path.Join(dir, base[len(whiteoutPrefix):]))
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		t.skipped["device node or fifo"]++
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeDir, tar.TypeReg, tar.TypeRegA, tar.TypeSymlink, tar.TypeLink, tar.TypeGNUSparse:
	default:
		t.skipped[fmt.Sprintf("tar type %q", hdr.Typeflag)]++
		return nil
	}
	h := cleanHeader(hdr, name)
	if name == "" {
		if h.Typeflag == tar.TypeDir {
			t.root.hdr = h
		}
		return nil
	}
	n := &node{name: name, hdr: h, origin: layer, content: contentKey{layer, index}}
	switch h.Typeflag {
	case tar.TypeLink:
		target := cleanName(hdr.Linkname)
		tn := t.lookup(target)
		if tn == nil || tn.isDir() {
			t.skipped["hard link to a missing file"]++
			return nil
		}
		// One inode: same content, same metadata as the target.
		c := *tn.hdr
		c.Name = name
		c.PAXRecords = tn.hdr.PAXRecords
		n.hdr = &c
		n.content = tn.content
	case tar.TypeRegA, tar.TypeGNUSparse:
		h.Typeflag = tar.TypeReg
	}
	parent := t.parentFor(name, layer)
	if old := parent.children[base]; old != nil && old.isDir() && n.isDir() {
		old.hdr = n.hdr
		old.origin = layer
		return nil
	}
	if n.isDir() {
		n.children = map[string]*node{}
	}
	parent.children[base] = n
	return nil
}

// cleanHeader copies what the ext4 image needs: type, mode, owner, times,
// link target, and xattrs (PAX SCHILY.xattr.*).
func cleanHeader(h *tar.Header, name string) *tar.Header {
	c := &tar.Header{
		Typeflag: h.Typeflag,
		Name:     name,
		Linkname: h.Linkname,
		Size:     h.Size,
		Mode:     h.Mode & 0o7777,
		Uid:      h.Uid,
		Gid:      h.Gid,
		ModTime:  h.ModTime,
		Format:   tar.FormatPAX,
	}
	if c.Typeflag != tar.TypeReg && c.Typeflag != tar.TypeRegA && c.Typeflag != tar.TypeGNUSparse {
		c.Size = 0
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if c.PAXRecords == nil {
				c.PAXRecords = map[string]string{}
			}
			c.PAXRecords[k] = v
		}
	}
	return c
}

// plan is the emission order computed from the final tree.
type plan struct {
	dirs    []*node
	others  []*node                 // symlinks
	groups  map[contentKey][]*node  // regular files by content (hard link groups)
	byLayer map[int]map[int][]*node // layer -> index -> group
	size    int64                   // bytes of file content to copy
	entries []*node                 // every node, sorted (for the file index)
}

func (t *tree) plan() *plan {
	p := &plan{groups: map[contentKey][]*node{}, byLayer: map[int]map[int][]*node{}}
	var walk func(n *node)
	walk = func(n *node) {
		names := make([]string, 0, len(n.children))
		for k := range n.children {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			ch := n.children[k]
			p.entries = append(p.entries, ch)
			switch ch.hdr.Typeflag {
			case tar.TypeDir:
				p.dirs = append(p.dirs, ch)
				walk(ch)
			case tar.TypeReg:
				p.groups[ch.content] = append(p.groups[ch.content], ch)
			default:
				p.others = append(p.others, ch)
			}
		}
	}
	walk(t.root)
	for k, g := range p.groups {
		if p.byLayer[k.layer] == nil {
			p.byLayer[k.layer] = map[int][]*node{}
		}
		p.byLayer[k.layer][k.index] = g
		p.size += g[0].hdr.Size
	}
	return p
}

// flatten applies the layers and writes the flattened tar to w. copied is
// told the running count of content bytes written and the total to
// write (first with done = 0, once the plan is known); capture receives the
// content of the small files named in it (e.g. etc/passwd).
func flatten(layers []layerOpener, w io.Writer, copied func(done, total int64), capture map[string]*strings.Builder) (*tree, *plan, error) {
	t := newTree()
	for i, open := range layers {
		rc, err := open()
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		err = t.apply(i, rc)
		if err == nil {
			// Reach EOF so digests get verified.
			if _, err = io.Copy(io.Discard, rc); err != nil {
				err = fmt.Errorf("layer %d: %w", i+1, err)
			}
		}
		rc.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	p := t.plan()
	if copied != nil {
		copied(0, p.size)
	}
	tw := tar.NewWriter(w)
	for _, d := range p.dirs {
		if err := tw.WriteHeader(d.hdr); err != nil {
			return nil, nil, err
		}
	}
	for _, o := range p.others {
		if err := tw.WriteHeader(o.hdr); err != nil {
			return nil, nil, err
		}
	}
	var done int64
	var links []*tar.Header
	for i, open := range layers {
		want := p.byLayer[i]
		if len(want) == 0 {
			continue
		}
		rc, err := open()
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		tr := tar.NewReader(rc)
		for index := 0; len(want) > 0; index++ {
			if _, err := tr.Next(); err != nil {
				rc.Close()
				if errors.Is(err, io.EOF) {
					err = errors.New("layer changed between reads (unexpected end)")
				}
				return nil, nil, fmt.Errorf("layer %d: %w", i+1, err)
			}
			g := want[index]
			if g == nil {
				continue
			}
			delete(want, index)
			primary := g[0]
			if err := tw.WriteHeader(primary.hdr); err != nil {
				rc.Close()
				return nil, nil, err
			}
			var dst io.Writer = tw
			for _, m := range g {
				if b := capture[m.name]; b != nil && primary.hdr.Size < 1<<20 {
					dst = io.MultiWriter(tw, b)
				}
			}
			n, err := io.CopyN(dst, tr, primary.hdr.Size)
			done += n
			if copied != nil {
				copied(done, p.size)
			}
			if err != nil {
				rc.Close()
				return nil, nil, fmt.Errorf("layer %d: %s: %w", i+1, primary.name, err)
			}
			for _, m := range g[1:] {
				links = append(links, &tar.Header{Typeflag: tar.TypeLink, Name: m.name, Linkname: primary.name, Format: tar.FormatPAX})
			}
		}
		rc.Close()
	}
	for _, l := range links {
		if err := tw.WriteHeader(l); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	return t, p, nil
}

package template_test

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The test image: busybox (Debian's busybox-static) with /etc/passwd, in
// three layers exercising what flattening must get right. What the guest must
// see is listed in wantInGuest (vm_test.go).

type entry struct {
	name     string
	typ      byte
	mode     int64
	uid      int
	body     string
	link     string
	xattrs   map[string]string
	fromFile string
}

func layerOf(t testing.TB, entries []entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.uid, Linkname: e.link, ModTime: mt, Format: tar.FormatPAX}
		body := []byte(e.body)
		if e.fromFile != "" {
			b, err := os.ReadFile(e.fromFile)
			if err != nil {
				t.Fatal(err)
			}
			body = b
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if e.typ == tar.TypeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func busyboxPath(t testing.TB) string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if out, err := exec.Command("file", "-L", p).Output(); err == nil && !strings.Contains(string(out), "dynamically") {
			return p
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no static busybox here (Debian package busybox-static)")
	return ""
}

const (
	reg  = tar.TypeReg
	dir  = tar.TypeDir
	sym  = tar.TypeSymlink
	hard = tar.TypeLink
)

// testImage builds the three-layer test image. withClaude adds a fake
// "claude" on PATH.
func testImage(t testing.TB, withClaude bool) v1.Image {
	t.Helper()
	bb := busyboxPath(t)
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	l1 := []entry{
		{name: "bin/", typ: dir, mode: 0o755},
		{name: "bin/busybox", typ: reg, mode: 0o755, fromFile: bb},
		{name: "etc/", typ: dir, mode: 0o755},
		{name: "etc/passwd", typ: reg, mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n"},
		{name: "etc/group", typ: reg, mode: 0o644, body: "root:x:0:\nagent:x:1000:\n"},
		{name: "root/", typ: dir, mode: 0o700},
		{name: "home/", typ: dir, mode: 0o755},
		{name: "home/agent/", typ: dir, mode: 0o755, uid: 1000},
		{name: "tmp/", typ: dir, mode: 0o1777},
		{name: "data/", typ: dir, mode: 0o755},
		{name: "data/old/", typ: dir, mode: 0o755},
		{name: "data/old/file-gone", typ: reg, mode: 0o644, body: "should be whited out\n"},
		{name: "data/old/file-kept", typ: reg, mode: 0o644, body: "kept\n"},
		{name: "data/gone-dir/", typ: dir, mode: 0o755},
		{name: "data/gone-dir/inner", typ: reg, mode: 0o644, body: "gone\n"},
		{name: "data/opq/", typ: dir, mode: 0o755},
		{name: "data/opq/lower-a", typ: reg, mode: 0o644, body: "lower\n"},
		{name: "data/opq/sub/", typ: dir, mode: 0o755},
		{name: "data/opq/sub/lower-b", typ: reg, mode: 0o644, body: "lower\n"},
		{name: "data/orig", typ: reg, mode: 0o644, body: "original\n"},
		{name: "data/orig-link", typ: hard, link: "data/orig"},
		{name: "data/was-file", typ: reg, mode: 0o644, body: "a file first\n"},
		{name: "bin/notexec", typ: reg, mode: 0o644, body: "#!/bin/sh\n"},
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			l1 = append(l1, entry{name: "bin/" + a, typ: sym, mode: 0o777, link: "busybox"})
		}
	}
	l2 := []entry{
		{name: "data/old/.wh.file-gone", typ: reg},
		{name: "data/.wh.gone-dir", typ: reg},
		{name: "data/opq/.wh..wh..opq", typ: reg},
		{name: "data/opq/upper-c", typ: reg, mode: 0o644, body: "upper\n"},
		{name: "data/hl-a", typ: reg, mode: 0o640, body: "shared inode\n"},
		{name: "data/hl-b", typ: hard, link: "data/hl-a"},
		{name: "data/sym", typ: sym, mode: 0o777, link: "hl-a"},
		{name: "data/abssym", typ: sym, mode: 0o777, link: "/etc/passwd"},
		{name: "data/tool.sh", typ: reg, mode: 0o755, body: "#!/bin/sh\necho tool-ran\n"},
		{name: "data/suid", typ: reg, mode: 0o4755, body: "x\n"},
		{name: "data/xattr-file", typ: reg, mode: 0o644, body: "has an xattr\n", xattrs: map[string]string{"user.moat": "hello"}},
		{name: "data/chardev", typ: tar.TypeChar, mode: 0o666},
		{name: "data/fifo", typ: tar.TypeFifo, mode: 0o644},
		{name: "opt/tools/", typ: dir, mode: 0o755},
		{name: "opt/tools/mytool", typ: reg, mode: 0o755, body: "#!/bin/sh\necho mytool\n"},
		{name: "usr/local/", typ: dir, mode: 0o755},
		{name: "usr/local/bin", typ: sym, mode: 0o777, link: "/opt/tools"},
		{name: "../../escape", typ: reg, mode: 0o644, body: "cleaned to /escape\n"},
	}
	l3 := []entry{
		{name: "data/orig", typ: reg, mode: 0o600, body: "replaced\n"},
		{name: "data/was-file/", typ: dir, mode: 0o711},
		{name: "data/was-file/child", typ: reg, mode: 0o644, body: "child\n"},
	}
	if withClaude {
		l3 = append(l3, entry{name: "opt/tools/claude", typ: reg, mode: 0o755, body: "#!/bin/sh\necho 9.9.9 '(Claude Code)'\n"})
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: "amd64",
		Config: v1.Config{Env: []string{"PATH=/usr/local/bin:/bin", "MOAT_TEST=1"}, User: "agent", WorkingDir: "/home/agent", Cmd: []string{"/bin/sh"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, layerOf(t, l1), layerOf(t, l2), layerOf(t, l3))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// serve starts an in-process registry on 127.0.0.1 and pushes img as
// test/busybox:v1; it returns the reference.
func serve(t testing.TB, img v1.Image, repo string) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/" + repo
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

package template_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moatsandbox/moat/vmhost/template"
)

func newStore(t testing.TB) *template.Store {
	s := template.Open(filepath.Join(t.TempDir(), "templates"))
	s.Arch = "amd64"
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// debugfs runs a read-only debugfs request against an ext4 image.
func debugfs(t testing.TB, disk, req string) string {
	t.Helper()
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs (e2fsprogs) not installed")
	}
	out, err := exec.Command("debugfs", "-R", req, disk).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs %q: %v\n%s", req, err, out)
	}
	return string(out)
}

// assertClean checks that no build left anything behind in tmp/.
func assertClean(t testing.TB, s *template.Store) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.Dir, "tmp"))
	for _, e := range ents {
		t.Errorf("left behind in tmp/: %s", e.Name())
	}
}

func images(t testing.TB, s *template.Store) []string {
	ents, _ := os.ReadDir(filepath.Join(s.Dir, "images"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestPullFlattenAndInspect(t *testing.T) {
	s := newStore(t)
	ref := serve(t, testImage(t, false), "test/busybox:v1")
	var log bytes.Buffer
	tp, err := s.Resolve(ctx(t), ref, template.ResolveOptions{Progress: template.NewLineProgress(&log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", log.String())
	if !strings.Contains(log.String(), "layer 1") || !strings.Contains(log.String(), "base disk: done") {
		t.Errorf("progress lines missing layers or the conversion:\n%s", log.String())
	}
	if tp.Name != ref || tp.Layers != 3 || tp.User != "agent" || tp.WorkingDir != "/home/agent" {
		t.Errorf("template: %+v", tp)
	}
	if !strings.Contains(strings.Join(tp.Env, " "), "MOAT_TEST=1") {
		t.Errorf("env not kept: %v", tp.Env)
	}
	if tp.Skipped["device node or fifo"] != 2 {
		t.Errorf("skipped: %v", tp.Skipped)
	}
	assertClean(t, s)

	for _, c := range []struct {
		bin, user string
		want      bool
	}{
		{"busybox", "agent", true},
		{"sh", "agent", true},       // symlink to busybox
		{"mytool", "agent", true},   // through the /usr/local/bin -> /opt/tools dir symlink
		{"notexec", "agent", false}, // mode 0644
		{"claude", "agent", false},
		{"tool.sh", "agent", false}, // executable but not on PATH
	} {
		got, at, err := tp.HasBinary(c.bin, c.user)
		if err != nil || got != c.want {
			t.Errorf("HasBinary(%q, %q) = %v at %q (%v), want %v", c.bin, c.user, got, at, err, c.want)
		}
	}
	err = tp.CheckBinary("claude", "agent")
	want := `template "` + ref + `" has no "claude" binary on PATH for user agent`
	if err == nil || err.Error() != want {
		t.Errorf("CheckBinary error:\n got %v\nwant %s", err, want)
	}

	// The ext4 itself, read on the host with debugfs.
	disk := tp.Disk
	ls := debugfs(t, disk, "ls -p /data")
	for _, name := range []string{"/hl-a/", "/hl-b/", "/sym/", "/orig/", "/orig-link/", "/was-file/", "/xattr-file/"} {
		if !strings.Contains(ls, name) {
			t.Errorf("/data lacks %s:\n%s", name, ls)
		}
	}
	for _, name := range []string{"gone-dir", "chardev", "fifo", ".wh."} {
		if strings.Contains(ls, name) {
			t.Errorf("/data has %s:\n%s", name, ls)
		}
	}
	if got := debugfs(t, disk, "ea_get /data/xattr-file user.moat"); !strings.Contains(got, "hello") {
		t.Errorf("xattr lost: %q", got)
	}
	if got := debugfs(t, disk, "ls -p /escape"); strings.Contains(got, "not found") {
		t.Errorf("../../escape was not confined to the root: %s", got)
	}

	// Cached: resolving again, or pulling again, reuses the disk.
	fi1, _ := os.Stat(disk)
	for _, pol := range []template.Policy{template.PullMissing, template.PullAlways, template.PullNever} {
		var log2 bytes.Buffer
		tp2, err := s.Resolve(ctx(t), ref, template.ResolveOptions{Policy: pol, Progress: template.NewLineProgress(&log2)})
		if err != nil {
			t.Fatalf("%s: %v", pol, err)
		}
		fi2, _ := os.Stat(tp2.Disk)
		if tp2.Disk != disk || !os.SameFile(fi1, fi2) || strings.Contains(log2.String(), "base disk") {
			t.Errorf("policy %s rebuilt the disk: %s\n%s", pol, tp2.Disk, log2.String())
		}
	}
	if n := len(images(t, s)); n != 1 {
		t.Errorf("%d images in the store, want 1", n)
	}
}

func TestLoadLayoutAndArchives(t *testing.T) {
	s := newStore(t)
	img := testImage(t, true)
	dir := t.TempDir()

	// OCI image layout directory.
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	tl, err := s.Resolve(ctx(t), filepath.Join(dir, "layout"), template.ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tl.Name != "layout" {
		t.Errorf("layout template named %q", tl.Name)
	}
	if err := tl.CheckBinary("claude", "agent"); err != nil {
		t.Error(err)
	}

	// docker-save archive of the same image: same digest, same disk.
	tag, _ := name.NewTag("example.com/my/img:v2")
	if err := tarball.WriteToFile(filepath.Join(dir, "saved.tar"), tag, img); err != nil {
		t.Fatal(err)
	}
	ta, err := s.Load(ctx(t), filepath.Join(dir, "saved.tar"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ta.Name != "example.com/my/img:v2" || ta.Digest != tl.Digest || ta.Disk != tl.Disk {
		t.Errorf("docker-save archive: %s %s %s (layout %s %s)", ta.Name, ta.Digest, ta.Disk, tl.Digest, tl.Disk)
	}

	// OCI archive: the layout directory as a tar.
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), ociTar)
	to, err := s.Load(ctx(t), ociTar, "from-oci", nil)
	if err != nil {
		t.Fatal(err)
	}
	if to.Digest != tl.Digest {
		t.Errorf("OCI archive digest %s, layout %s", to.Digest, tl.Digest)
	}
	list, err := s.List()
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	if n := len(images(t, s)); n != 1 {
		t.Errorf("%d images, want 1 shared by three names", n)
	}
	assertClean(t, s)

	// rm: refused while in use, -f keeps the disk for its sandboxes, GC
	// deletes it once nothing uses it.
	users := map[string][]string{tl.Digest: {"sb1"}}
	inUse := func(d string) []string { return users[d] }
	for _, n := range []string{"example.com/my/img:v2", "from-oci"} {
		if err := s.Remove(ctx(t), n, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	err = s.Remove(ctx(t), "layout", false, inUse)
	if err == nil || !strings.Contains(err.Error(), "used by sandbox sb1") {
		t.Fatalf("rm of a template in use: %v", err)
	}
	if err := s.Remove(ctx(t), "layout", true, inUse); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tl.Disk); err != nil {
		t.Fatalf("forced rm deleted the disk a sandbox uses: %v", err)
	}
	delete(users, tl.Digest)
	if removed, err := s.GC(ctx(t), inUse); err != nil || len(removed) != 1 {
		t.Fatalf("gc: %v %v", removed, err)
	}
	if _, err := os.Stat(tl.Disk); !os.IsNotExist(err) {
		t.Fatalf("disk still there after gc: %v", err)
	}
}

func tarDir(t testing.TB, src, dst string) {
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		fi, _ := d.Info()
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = filepath.ToSlash(rel)
		tw.WriteHeader(h)
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	s := newStore(t)
	ref := serve(t, testImage(t, false), "test/busybox:v1")
	host := strings.Split(ref, "/")[0]
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.tar")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a tar "), 1000), 0o644)
	// A valid docker-save archive, truncated in the middle of a layer.
	full := filepath.Join(dir, "full.tar")
	tag, _ := name.NewTag("x/y:z")
	if err := tarball.WriteToFile(full, tag, testImage(t, false)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(full)
	truncated := filepath.Join(dir, "truncated.tar")
	os.WriteFile(truncated, b[:len(b)*2/3], 0o644)
	emptyDir := t.TempDir()
	// A layout whose biggest blob (the busybox layer) is damaged.
	damaged := filepath.Join(dir, "damaged")
	lp, err := layout.Write(damaged, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(testImage(t, false)); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(damaged, "blobs", "sha256", "*"))
	var big string
	var bigSize int64
	for _, b := range blobs {
		if fi, _ := os.Stat(b); fi.Size() > bigSize {
			big, bigSize = b, fi.Size()
		}
	}
	os.WriteFile(big, bytes.Repeat([]byte{0x1f, 0x8b, 0}, int(bigSize/3)), 0o644)
	// And one whose layer is valid gzip with other content (only the digest
	// can tell).
	tampered := filepath.Join(dir, "tampered")
	lp, err = layout.Write(tampered, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	timg := testImage(t, false)
	if err := lp.AppendImage(timg); err != nil {
		t.Fatal(err)
	}
	tls, _ := timg.Layers()
	ld, _ := tls[1].Digest()
	other, _ := testImage(t, true).Layers()
	rc, _ := other[2].Compressed()
	ob, _ := io.ReadAll(rc)
	os.WriteFile(filepath.Join(tampered, "blobs", "sha256", ld.Hex), ob, 0o644)

	for _, c := range []struct {
		name, ref string
		policy    template.Policy
		want      string
	}{
		{"unknown local name, never", "no-such-template", template.PullNever, "not in the local store and the pull policy is never"},
		{"unknown image in a reachable registry", host + "/test/nothing:v1", template.PullMissing, "has no such image"},
		{"unknown tag", host + "/test/busybox:v2", template.PullMissing, "has no such image"},
		{"unreachable registry", "127.0.0.1:1/test/busybox:v1", template.PullMissing, "cannot reach registry 127.0.0.1:1"},
		{"invalid reference", "Not A Ref!", template.PullMissing, "unknown template"},
		{"corrupt archive", garbage, template.PullMissing, "not a readable tar archive"},
		{"truncated archive", truncated, template.PullMissing, "load template from"},
		{"missing file", filepath.Join(dir, "nope.tar"), template.PullMissing, "no such file"},
		{"not a layout", emptyDir, template.PullMissing, "expected an OCI image layout"},
		{"damaged layer in a layout", damaged, template.PullMissing, "build base disk"},
		{"tampered layer in a layout", tampered, template.PullMissing, "does not match its digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := s.Resolve(ctx(t), c.ref, template.ResolveOptions{Policy: c.policy})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			t.Logf("%s (%v)", err, time.Since(start).Round(time.Millisecond))
			assertClean(t, s)
			if im := images(t, s); len(im) != 0 {
				t.Fatalf("images left behind: %v", im)
			}
			if l, _ := s.List(); len(l) != 0 {
				t.Fatalf("names left behind: %v", l)
			}
		})
	}
}

func TestSaveRoundTrip(t *testing.T) {
	s := newStore(t)
	base, err := s.Resolve(ctx(t), serve(t, testImage(t, true), "test/busybox:v1"), template.ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot as a sandbox would produce it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []entry{
		{name: "./", typ: dir, mode: 0o755},
		{name: "./bin/", typ: dir, mode: 0o755},
		{name: "./bin/busybox", typ: reg, mode: 0o755, fromFile: busyboxPath(t)},
		{name: "./bin/sh", typ: sym, link: "busybox"},
		{name: "./etc/", typ: dir, mode: 0o755},
		{name: "./etc/passwd", typ: reg, mode: 0o644, body: "root:x:0:0::/root:/bin/sh\n"},
		{name: "./home/agent/made-in-a", typ: reg, mode: 0o644, uid: 1000, body: "hello from A\n"},
	} {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Linkname: e.link}
		body := []byte(e.body)
		if e.fromFile != "" {
			body, _ = os.ReadFile(e.fromFile)
		}
		if e.typ == reg {
			h.Size = int64(len(body))
		}
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	out := filepath.Join(t.TempDir(), "saved.tar")
	st, err := s.Save(ctx(t), &buf, "mine:v1", template.SaveOptions{Base: base, Sandbox: "a", Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if st.User != "agent" || st.WorkingDir != "/home/agent" || st.Source != "sandbox:a" {
		t.Errorf("saved template lost the base config: %+v", st.Image)
	}
	if ok, _, _ := st.HasBinary("sh", "agent"); !ok {
		t.Error("saved template has no sh")
	}
	if got := debugfs(t, st.Disk, "cat /home/agent/made-in-a"); !strings.Contains(got, "hello from A") {
		t.Errorf("saved disk: %q", got)
	}
	// The archive loads back to the same image.
	s2 := newStore(t)
	lt, err := s2.Load(ctx(t), out, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lt.Digest != st.Digest || lt.Name != "mine:v1" {
		t.Errorf("archive round trip: %s %s vs %s", lt.Name, lt.Digest, st.Digest)
	}
	assertClean(t, s)

	// A failing reader leaves nothing behind.
	_, err = s.Save(ctx(t), io.MultiReader(strings.NewReader("partial"), errReader{}), "broken", template.SaveOptions{})
	if err == nil {
		t.Fatal("save from a failing stream succeeded")
	}
	assertClean(t, s)
	if _, err := s.Get("broken"); err == nil {
		t.Fatal("a failed save left a template")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

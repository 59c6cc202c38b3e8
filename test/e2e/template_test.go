//go:build linux

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/template"
)

// busyboxLayout writes an OCI image layout: Debian's static busybox, an
// agent user, a marker file and (withClaude) a fake claude on PATH.
func busyboxLayout(t *testing.T, withClaude bool) string {
	t.Helper()
	bb := "/bin/busybox"
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Skipf("no static busybox (busybox-static): %v", err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, mode int64, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(b))})
		tw.Write(b)
	}
	for _, d := range []string{"bin/", "etc/", "home/", "tmp/", "usr/", "usr/local/", "usr/local/bin/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	file("bin/busybox", 0o755, body)
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
		}
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nagent:x:1000:\n"))
	file("etc/moat-marker", 0o644, []byte("from the template image\n"))
	if withClaude {
		file("usr/local/bin/claude", 0o755, []byte("#!/bin/sh\necho fake-claude \"$@\"\n"))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64",
		Config: v1.Config{Env: []string{"PATH=/usr/local/bin:/bin", "MOAT_IMG=e2e"}, User: "agent"}})
	if img, err = mutate.AppendLayers(img, l); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), map[bool]string{true: "bb-claude", false: "bb-plain"}[withClaude])
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTemplates: OCI templates through the CLI, daemon and supervisor on
// real VMs: the early binary check, a sandbox booted from the template's
// disk with its env, save and a sandbox from the saved template, template rm
// while in use, load of the saved archive.
func TestTemplates(t *testing.T) {
	h := setup(t)
	plain, withClaude := busyboxLayout(t, false), busyboxLayout(t, true)
	ws := filepath.Join(t.TempDir(), "tproj")
	ws2 := filepath.Join(t.TempDir(), "tproj2")
	os.MkdirAll(ws, 0o755)
	os.MkdirAll(ws2, 0o755)

	h.fails(`template "bb-plain" has no "claude" binary on PATH for user agent`, "create", "-q", "-t", plain, "claude", ws)
	if out := h.ok("ls", "-q"); out != "" {
		t.Fatalf("refused template left a sandbox: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.home, "sandboxes")); len(ents) != 0 {
		t.Fatalf("refused template left sandbox state: %v", ents)
	}

	h.ok("run", "-d", "-q", "-t", withClaude, "claude", ws)
	name := "claude-tproj"
	if got := h.ok("exec", name, "sh", "-c", "claude --version; cat /etc/moat-marker; echo $MOAT_IMG; id -un"); got != "fake-claude --version\nfrom the template image\ne2e\nagent\n" {
		t.Fatalf("sandbox from the template: %q", got)
	}
	h.ok("exec", name, "sh", "-c", "echo made-before-save > /home/agent/saved.txt && sync")
	archive := filepath.Join(t.TempDir(), "saved.tar")
	h.ok("save", "-q", "-o", archive, name, "saved:v1")
	if out := h.ok("template", "ls"); !strings.Contains(out, "saved:v1") || !strings.Contains(out, "bb-claude") {
		t.Fatalf("template ls: %q", out)
	}
	h.ok("run", "-d", "-q", "--name", "from-saved", "-t", "saved:v1", "claude", ws2)
	if got := h.ok("exec", "from-saved", "cat", "/home/agent/saved.txt", "/etc/moat-marker"); got != "made-before-save\nfrom the template image\n" {
		t.Fatalf("sandbox from the saved template: %q", got)
	}
	h.fails("used by sandbox from-saved", "template", "rm", "saved:v1")
	h.ok("rm", "-f", "from-saved")
	h.ok("template", "rm", "saved:v1")
	if out := h.ok("template", "load", "-q", archive); !strings.HasPrefix(out, "saved:v1 ") {
		t.Fatalf("load of the saved archive: %q", out)
	}
	// The first sandbox is untouched by all of this.
	if got := h.ok("exec", name, "cat", "/home/agent/saved.txt"); got != "made-before-save\n" {
		t.Fatalf("first sandbox after rm of the other: %q", got)
	}

	// `template rm -f` of a template in use: the sandbox keeps its image and
	// the image's env; removing the sandbox then frees the image's disk.
	var sbs []api.Sandbox
	if err := json.Unmarshal([]byte(h.ok("inspect", name)), &sbs); err != nil || len(sbs) != 1 || sbs[0].TemplateDigest == "" {
		t.Fatalf("inspect: %v %+v", err, sbs)
	}
	sb := sbs[0]
	imgDir := template.Open(filepath.Join(h.home, "templates")).ImageDir(sb.TemplateDigest)
	h.fails("used by sandbox "+name, "template", "rm", sb.Template)
	h.ok("template", "rm", "-f", sb.Template)
	if _, err := os.Stat(imgDir); err != nil {
		t.Fatalf("template rm -f took the image of a sandbox that uses it: %v", err)
	}
	if got := h.ok("exec", name, "sh", "-c", "echo $MOAT_IMG; claude --version"); got != "e2e\nfake-claude --version\n" {
		t.Fatalf("exec after template rm -f: %q", got)
	}
	h.ok("rm", "-f", name)
	if _, err := os.Stat(imgDir); !os.IsNotExist(err) {
		t.Fatalf("the image of the last sandbox using it is still there after moat rm: %v", err)
	}
}

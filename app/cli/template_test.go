package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ocilayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/daemon/daemontest"
)

// tinyLayout writes an OCI layout of a one-layer image; withClaude puts an
// executable claude in /usr/local/bin.
func tinyLayout(t *testing.T, withClaude bool) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string]string{"bin/sh": "#!fake\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n"}
	if withClaude {
		files["usr/local/bin/claude"] = "#!/bin/sh\necho fake claude\n"
	}
	for n, body := range files {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Env: []string{"PATH=/usr/local/bin:/bin"}}})
	img, err = mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), map[bool]string{true: "with-claude", false: "no-claude"}[withClaude])
	p, err := ocilayout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTemplateCommands(t *testing.T) {
	daemontest.Start(t)
	no, yes := tinyLayout(t, false), tinyLayout(t, true)
	ws := filepath.Join(t.TempDir(), "proj")
	os.MkdirAll(ws, 0o700)
	ws, _ = filepath.EvalSymlinks(ws)

	// An image without the agent's binary is refused before anything is created.
	oneLineErr(t, moat(t, "", "create", "-q", "-t", no, "claude", ws), `template "no-claude" has no "claude" binary on PATH for user agent`)
	if r := moat(t, "", "ls", "-q"); r.out != "" {
		t.Fatalf("a refused template left a sandbox: %q", r.out)
	}
	// Pull policy never with nothing local; an invalid policy.
	oneLineErr(t, moat(t, "", "create", "-q", "--pull-template", "never", "-t", "example.invalid/x/y:z", "claude", ws), "the pull policy is never")
	oneLineErr(t, moat(t, "", "create", "-q", "--pull-template", "sometimes", "-t", yes, "claude", ws), `invalid pull policy "sometimes"`)
	if r := moat(t, "", "ls", "-q"); r.out != "" {
		t.Fatalf("failed creates left a sandbox: %q", r.out)
	}

	// A good one: the sandbox records it.
	if r := moat(t, "", "create", "-q", "-t", yes, "claude", ws); r.code != 0 || r.out != "claude-proj\n" {
		t.Fatalf("create with a template: %+v", r)
	}
	var l []api.Sandbox
	r := moat(t, "", "ls", "--json")
	if err := json.Unmarshal([]byte(r.out), &l); err != nil || len(l) != 1 || l[0].Template != "with-claude" {
		t.Fatalf("ls: %v %s", err, r.out)
	}
	r = moat(t, "", "template", "ls")
	if r.code != 0 || !strings.Contains(r.out, "no-claude") || !strings.Contains(r.out, "claude-proj") {
		t.Fatalf("template ls: %+v", r)
	}
	oneLineErr(t, moat(t, "", "template", "rm", "with-claude"), "used by sandbox claude-proj")
	if r := moat(t, "", "rm", "claude-proj"); r.code != 0 {
		t.Fatalf("rm: %+v", r)
	}
	// All or nothing: an unknown name removes none of the others.
	oneLineErr(t, moat(t, "", "template", "rm", "no-claude", "nosuch"), `no local template "nosuch"`)
	if r := moat(t, "", "template", "ls"); !strings.Contains(r.out, "no-claude") {
		t.Fatalf("template rm with an unknown name removed another: %+v", r)
	}
	if r := moat(t, "", "template", "rm", "with-claude", "no-claude"); r.code != 0 {
		t.Fatalf("template rm: %+v", r)
	}

	// The agent's default: a local template named claude wins.
	if r := moat(t, "", "template", "load", "-q", "--name", "claude", yes); r.code != 0 || !strings.HasPrefix(r.out, "claude ") {
		t.Fatalf("template load: %+v", r)
	}
	if r := moat(t, "", "create", "-q", "claude", ws); r.code != 0 {
		t.Fatalf("create with the default template: %+v", r)
	}
	r = moat(t, "", "ls", "--json")
	if err := json.Unmarshal([]byte(r.out), &l); err != nil || len(l) != 1 || l[0].Template != "claude" {
		t.Fatalf("default template: %v %s", err, r.out)
	}
	oneLineErr(t, moat(t, "", "template", "load", filepath.Join(t.TempDir(), "missing.tar")), "no such file")
}

// Command claude builds Moat's default Claude Code template without Docker:
// a Debian bookworm root filesystem made by mmdebstrap (from Debian's
// packages), the real Claude Code native binary from the npm registry
// (version pinned in claude-code.version, checked against the registry's
// sha512 integrity), and user agent (uid 1000) with passwordless sudo. The
// result is an OCI image layout, cached in the user cache directory by a key
// over everything that goes into it, and loaded into Moat's template store
// as the local template "claude".
//
//	go run ./build/templates/claude            (what `make template` runs)
//	go run ./build/templates/claude -load=false -out DIR
package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/template"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("template claude: ")
	arch := flag.String("arch", runtime.GOARCH, "guest architecture (amd64 or arm64)")
	out := flag.String("out", "", "cache directory (default <user cache>/moat/templates/claude)")
	load := flag.Bool("load", true, "load the image into the template store as "+Name)
	name := flag.String("name", Name, "template name to load it as")
	flag.Parse()
	start := time.Now()
	dir, cached, err := Build(context.Background(), *arch, *out)
	if err != nil {
		log.Fatal(err)
	}
	how := "built"
	if cached {
		how = "cached"
	}
	log.Printf("image layout %s (%s in %v)", dir, how, time.Since(start).Round(100*time.Millisecond))
	if !*load {
		return
	}
	l, err := state.Default()
	if err != nil {
		log.Fatal(err)
	}
	s := template.Open(l.TemplatesDir())
	s.Arch = *arch
	t0 := time.Now()
	tp, err := s.Load(context.Background(), dir, *name, template.AutoProgress(os.Stderr))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("loaded as template %q (%s, disk %d MiB) in %v; total %v", tp.Name, tp.Digest[:19], tp.DiskSize>>20,
		time.Since(t0).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
}

// Build makes (or finds cached) the image layout; it returns its directory.
func Build(ctx context.Context, arch, out string) (string, bool, error) {
	version, err := Version()
	if err != nil {
		return "", false, err
	}
	if out == "" {
		out, err = CacheDir()
		if err != nil {
			return "", false, err
		}
	}
	key := Key(arch, version)
	final := filepath.Join(out, key)
	if _, err := os.Stat(filepath.Join(final, "index.json")); err == nil {
		return final, true, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", false, errors.New("mmdebstrap is not installed: apt-get install mmdebstrap (Debian's package; no Docker needed)")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", false, err
	}
	work, err := os.MkdirTemp(out, key+".tmp")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(work)

	t0 := time.Now()
	bin, err := fetchClaude(ctx, arch, version, work)
	if err != nil {
		return "", false, err
	}
	log.Printf("claude %s from the npm registry, integrity checked (%v)", version, time.Since(t0).Round(100*time.Millisecond))

	t0 = time.Now()
	rootfs := filepath.Join(work, "rootfs.tar")
	if err := mmdebstrap(ctx, arch, bin, rootfs); err != nil {
		return "", false, err
	}
	log.Printf("mmdebstrap: Debian %s root filesystem (%v)", Suite, time.Since(t0).Round(100*time.Millisecond))

	t0 = time.Now()
	layer, err := tarball.LayerFromFile(rootfs, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return "", false, err
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: time.Now().UTC()},
		Config: v1.Config{
			Env:        Env,
			User:       "agent",
			WorkingDir: "/home/agent",
			Cmd:        []string{"claude"},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "moat claude template",
				"org.opencontainers.image.description": "Debian " + Suite + " with Claude Code " + version,
				"dev.moat.claude-code.version":         version,
			},
		},
	})
	if err != nil {
		return "", false, err
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", false, err
	}
	lp, err := layout.Write(filepath.Join(work, "layout"), empty.Index)
	if err != nil {
		return "", false, err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Name})); err != nil {
		return "", false, err
	}
	log.Printf("OCI image layout written (%v)", time.Since(t0).Round(100*time.Millisecond))
	if err := os.Rename(filepath.Join(work, "layout"), final); err != nil {
		return "", false, err
	}
	return final, false, nil
}

// fetchClaude downloads the native binary through npm (its registry and
// proxy settings), checks the tarball against the registry's dist.integrity
// and returns the path of the extracted binary.
func fetchClaude(ctx context.Context, arch, version, work string) (string, error) {
	pkg, err := NPMPackage(arch)
	if err != nil {
		return "", err
	}
	want, err := output(ctx, "", "npm", "view", pkg+"@"+version, "dist.integrity")
	if err != nil {
		return "", fmt.Errorf("ask the npm registry for %s@%s: %w", pkg, version, err)
	}
	want = strings.TrimSpace(want)
	if !strings.HasPrefix(want, "sha512-") {
		return "", fmt.Errorf("npm registry gave no sha512 integrity for %s@%s: %q", pkg, version, want)
	}
	packDir := filepath.Join(work, "npm")
	os.MkdirAll(packDir, 0o755)
	js, err := output(ctx, packDir, "npm", "pack", "--json", pkg+"@"+version)
	if err != nil {
		return "", fmt.Errorf("npm pack %s@%s: %w", pkg, version, err)
	}
	var packed []struct {
		Filename string `json:"filename"`
	}
	if err := json.Unmarshal([]byte(js), &packed); err != nil || len(packed) != 1 {
		return "", fmt.Errorf("npm pack printed %q", js)
	}
	tgz := filepath.Join(packDir, packed[0].Filename)
	f, err := os.Open(tgz)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	if got := "sha512-" + base64.StdEncoding.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s: integrity %s does not match the registry's %s", tgz, got, want)
	}
	f.Seek(0, 0)
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(zr)
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("%s has no package/claude", tgz)
		}
		if err != nil {
			return "", err
		}
		if hd.Name != "package/claude" {
			continue
		}
		bin := filepath.Join(work, "claude")
		out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return "", err
		}
		os.Remove(tgz)
		return bin, out.Close()
	}
}

func mmdebstrap(ctx context.Context, arch, claude, out string) error {
	mode := "--mode=root"
	if os.Geteuid() != 0 {
		mode = "--mode=unshare" // unprivileged user namespaces
	}
	args := []string{
		mode,
		"--variant=minbase",
		"--architectures=" + DebArch(arch),
		"--include=" + strings.Join(Packages, ","),
		"--customize-hook=chroot \"$1\" useradd --create-home --uid 1000 --user-group --shell /bin/bash agent",
		"--customize-hook=echo 'agent ALL=(ALL) NOPASSWD:ALL' > \"$1/etc/sudoers.d/agent\" && chmod 0440 \"$1/etc/sudoers.d/agent\"",
		"--customize-hook=copy-in " + claude + " /usr/local/bin",
		"--customize-hook=chmod 0755 \"$1/usr/local/bin/claude\"",
		// No apt lists, docs or logs in the image.
		"--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/* \"$1\"/var/log/*.log",
		Suite, out,
	}
	args = append(args, Mirrors...)
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap: %w", err)
	}
	return nil
}

func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	return string(b), err
}

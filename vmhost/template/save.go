package template

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/moatsandbox/moat/vmhost/state"
)

// SnapshotScript, run as root in a sandbox, writes a tar of the sandbox's
// root filesystem (the overlay of template and writable disk) to stdout.
// A non-recursive bind mount of / shows the root alone: no /proc, /sys,
// /dev, /run or workspace contents, whatever the tar implementation.
const SnapshotScript = `set -e
d=/run/moat/snapshot.$$
mkdir -p "$d"
mount --bind / "$d"
trap 'umount "$d"; rmdir "$d"' EXIT
tar -C "$d" -cf - .
`

// SaveOptions describe a Save.
type SaveOptions struct {
	// Base is the template the sandbox was made from: its config (env,
	// user, working dir, entrypoint, cmd) carries over.
	Base *Template
	// Sandbox names the source, for the template's metadata.
	Sandbox string
	// Output, when set, also writes the image as an archive (docker-save
	// format, loadable by `moat template load` and `docker load`).
	Output   string
	Progress Progress
}

// ParseTag checks a tag for a saved template: an image name with an
// optional :tag (what `docker tag` accepts, e.g. my-claude:v2).
func ParseTag(tag string) (name.Reference, error) {
	r, err := name.NewTag(tag)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid template tag (use a name like my-template or my-template:v2: lower-case letters, digits, . _ - and /, then an optional :tag)", tag)
	}
	return r, nil
}

// Save makes a template called tag from rootfs, a tar of a sandbox's root
// filesystem (see SnapshotScript). The tar is spooled to the store's tmp/
// first (it is read more than once) and removed afterwards.
func (s *Store) Save(ctx context.Context, rootfs io.Reader, tag string, o SaveOptions) (*Template, error) {
	if o.Progress == nil {
		o.Progress = Discard
	}
	if err := checkName(tag); err != nil {
		return nil, err
	}
	ref, err := ParseTag(tag)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.tmpDir(), "save.*.tar")
	if err != nil {
		return nil, err
	}
	spool := f.Name()
	defer os.Remove(spool)
	o.Progress.Phase("reading the sandbox's filesystem")
	bar := o.Progress.Bar("snapshot", 0)
	n, err := io.Copy(f, &countReader{r: rootfs, bar: bar})
	bar.Done()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("save: read the sandbox's filesystem: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("save: the sandbox's filesystem snapshot is empty")
	}
	layer, err := tarball.LayerFromFile(spool)
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	cfg := &v1.ConfigFile{
		Architecture: s.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: time.Now().UTC()},
	}
	if cfg.Architecture == "" {
		cfg.Architecture = runtime.GOARCH
	}
	if b := o.Base; b != nil {
		cfg.Config = v1.Config{Env: b.Env, User: b.User, WorkingDir: b.WorkingDir, Entrypoint: b.Entrypoint, Cmd: b.Cmd}
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	source := "sandbox:" + o.Sandbox
	t, err := s.importImage(ctx, img, importInfo{name: tag, source: source}, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	if o.Output != "" {
		o.Progress.Phase(fmt.Sprintf("writing %s", o.Output))
		if err := writeArchive(o.Output, ref, img); err != nil {
			return t, fmt.Errorf("save: the template %s is in the store, but writing %s failed: %w", tag, o.Output, err)
		}
	}
	return t, nil
}

// writeArchive writes img to path atomically (temporary file, rename).
func writeArchive(path string, ref name.Reference, img v1.Image) error {
	return state.WriteAtomic(path, 0o644, func(w io.Writer) error { return tarball.Write(ref, img, w) })
}

type countReader struct {
	r   io.Reader
	n   int64
	bar Bar
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.bar.Set(c.n)
	return n, err
}

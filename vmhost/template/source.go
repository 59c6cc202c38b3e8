package template

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/moatsandbox/moat/vmhost/state"
)

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	Policy   Policy   // default PullMissing
	Progress Progress // default Discard
	// Keychain authenticates registry pulls (default authn.DefaultKeychain:
	// the Docker config and its credential helpers).
	Keychain authn.Keychain
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

func (o *ResolveOptions) fill() {
	if o.Policy == "" {
		o.Policy = PullMissing
	}
	if o.Progress == nil {
		o.Progress = Discard
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
}

// Resolve returns the template ref names, making it when needed. ref is, in
// order: the name of a local template; a local OCI image layout directory or
// an OCI / docker-save archive (a path: loaded, cached by digest); or a
// registry reference (pulled per the policy).
func (s *Store) Resolve(ctx context.Context, ref string, o ResolveOptions) (*Template, error) {
	o.fill()
	if ref == "" {
		return nil, errors.New("no template given")
	}
	if t, err := s.Get(ref); err == nil {
		if o.Policy != PullAlways || !isRegistrySource(t.Source) {
			return t, nil
		}
		return s.Pull(ctx, t.Source, o)
	} else if !isNotFound(err) {
		return nil, err
	}
	if looksLikePath(ref) {
		if _, err := os.Stat(ref); err != nil {
			return nil, fmt.Errorf("template %s: %w", ref, err)
		}
		return s.Load(ctx, ref, "", o.Progress)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("unknown template %q: not a local template (see `moat template ls`), not an image layout or archive, and not a valid image reference (%v)", ref, err)
	}
	key := familiar(r)
	if o.Policy != PullAlways {
		if t, err := s.Get(key); err == nil {
			return t, nil
		}
	}
	if o.Policy == PullNever {
		return nil, fmt.Errorf("template %q is not in the local store and the pull policy is never; pull it with `moat template pull %s`, or use --pull-template missing", ref, ref)
	}
	return s.Pull(ctx, ref, o)
}

func isNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

func looksLikePath(ref string) bool {
	if strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || strings.HasPrefix(ref, "~") || filepath.IsAbs(ref) {
		return true
	}
	if strings.HasSuffix(ref, ".tar") || strings.HasSuffix(ref, ".tar.gz") {
		return true
	}
	if fi, err := os.Stat(ref); err == nil && fi.IsDir() {
		return true
	}
	return false
}

// isRegistrySource tells whether a stored source is a registry reference
// (Pull sets it), rather than a path or a saved sandbox.
func isRegistrySource(src string) bool {
	if src == "" || looksLikePath(src) || strings.HasPrefix(src, "sandbox:") {
		return false
	}
	_, err := name.ParseReference(src)
	return err == nil
}

// familiar is the short form of a reference ("docker/sandbox-templates:claude-code",
// "ubuntu:24.04", "ghcr.io/x/y:z"), used as the template's name.
func familiar(r name.Reference) string {
	s := r.Name()
	s = strings.TrimPrefix(s, name.DefaultRegistry+"/")
	s = strings.TrimPrefix(s, "library/")
	return s
}

// Pull fetches ref from its registry (for this store's architecture) and
// makes it a template named by its short reference.
func (s *Store) Pull(ctx context.Context, ref string, o ResolveOptions) (*Template, error) {
	o.fill()
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %v", ref, err)
	}
	o.Progress.Phase(fmt.Sprintf("pulling %s (linux/%s)", familiar(r), s.Arch))
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: s.Arch}),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Steps: 3}),
	}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, registryError(r, err)
	}
	md, _ := img.Digest()
	t, err := s.importImage(ctx, img, importInfo{name: familiar(r), source: familiar(r), manifest: md.String(), spool: true}, o.Progress)
	if err != nil {
		return nil, registryError(r, err)
	}
	return t, nil
}

// registryError says what failed talking to a registry and what to do.
func registryError(r name.Reference, err error) error {
	reg := r.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("pull %s: not authorized by %s (for a private image run `docker login %s`; Moat uses Docker's credentials): %w", familiar(r), reg, reg, err)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			return fmt.Errorf("pull %s: %s has no such image (check the name and tag): %w", familiar(r), reg, err)
		}
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("pull %s: cannot reach registry %s (check the network, a proxy, or the registry name): %w", familiar(r), reg, err)
	}
	if strings.Contains(err.Error(), "no child with platform") {
		return fmt.Errorf("pull %s: the image has no linux/%s variant: %w", familiar(r), r.Context().RegistryStr(), err)
	}
	return fmt.Errorf("pull %s: %w", familiar(r), err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// Load makes a template of a local OCI image layout directory or an OCI /
// docker-save archive. The name is, when empty, the image's own tag
// (annotation or RepoTags) or else the file's base name.
func (s *Store) Load(ctx context.Context, path, tname string, progress Progress) (*Template, error) {
	if progress == nil {
		progress = Discard
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load template: %w", err)
	}
	abs, _ := filepath.Abs(path)
	var img v1.Image
	var tag string
	if fi.IsDir() {
		img, tag, err = s.fromLayout(path)
		if err != nil {
			return nil, fmt.Errorf("load template from %s: %w (expected an OCI image layout: oci-layout, index.json, blobs/)", path, err)
		}
	} else {
		var cleanup func()
		img, tag, cleanup, err = s.fromArchive(ctx, path)
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			return nil, fmt.Errorf("load template from %s: %w (expected an OCI archive or a `docker save` archive)", path, err)
		}
	}
	if tname == "" {
		tname = tag
	}
	if tname == "" {
		tname = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(abs), ".tar"), ".oci")
	}
	progress.Phase(fmt.Sprintf("loading %s as template %s", path, tname))
	md, _ := img.Digest()
	t, err := s.importImage(ctx, img, importInfo{name: tname, source: abs, manifest: md.String()}, progress)
	if err != nil {
		return nil, fmt.Errorf("load template from %s: %w", path, err)
	}
	return t, nil
}

// fromLayout picks the image for this architecture from a layout's index.
func (s *Store) fromLayout(dir string) (v1.Image, string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, "", err
	}
	return s.pickImage(idx, "")
}

func (s *Store) pickImage(idx v1.ImageIndex, tag string) (v1.Image, string, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != s.Arch) {
			continue
		}
		cands = append(cands, d)
	}
	if len(cands) == 0 {
		return nil, "", fmt.Errorf("no image for linux/%s in it (%d manifests)", s.Arch, len(im.Manifests))
	}
	d := cands[0]
	if t := d.Annotations["io.containerd.image.name"]; t != "" && tag == "" {
		tag = t
	} else if t := d.Annotations["org.opencontainers.image.ref.name"]; t != "" && tag == "" {
		tag = t
	}
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, "", err
		}
		return s.pickImage(child, tag)
	}
	img, err := idx.Image(d.Digest)
	return img, tag, err
}

// fromArchive reads a docker-save archive (manifest.json) directly, or an
// OCI archive (index.json only) by unpacking it to a temporary layout.
func (s *Store) fromArchive(ctx context.Context, path string) (v1.Image, string, func(), error) {
	hasManifest, hasIndex, err := archiveKind(path)
	if err != nil {
		return nil, "", nil, err
	}
	switch {
	case hasManifest:
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
		if err != nil {
			return nil, "", nil, err
		}
		if len(m) != 1 {
			return nil, "", nil, fmt.Errorf("it holds %d images; save one image per archive", len(m))
		}
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return nil, "", nil, err
		}
		tag := ""
		if len(m[0].RepoTags) > 0 {
			if r, err := name.ParseReference(m[0].RepoTags[0]); err == nil {
				tag = familiar(r)
			}
		}
		return img, tag, nil, nil
	case hasIndex:
		if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
			return nil, "", nil, err
		}
		dir, err := os.MkdirTemp(s.tmpDir(), "archive.")
		if err != nil {
			return nil, "", nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := untar(path, dir); err != nil {
			return nil, "", cleanup, err
		}
		img, tag, err := s.fromLayout(dir)
		return img, tag, cleanup, err
	}
	return nil, "", nil, errors.New("it has neither manifest.json nor index.json")
}

func archiveKind(path string) (manifest, index bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return manifest, index, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("not a readable tar archive: %w", err)
		}
		switch cleanName(h.Name) {
		case "manifest.json":
			manifest = true
		case "index.json":
			index = true
		}
	}
}

// untar unpacks regular files and directories of an OCI archive.
func untar(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("corrupt archive: %w", err)
		}
		n := cleanName(h.Name)
		if n == "" {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(n))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("corrupt archive: %s: %w", n, err)
			}
		}
	}
}

type importInfo struct {
	name, source, manifest string
	spool                  bool // download layers to files first (remote)
	extra                  func(*Image)
}

// importImage turns img into a store image (unless its digest is there
// already) and names it.
func (s *Store) importImage(ctx context.Context, img v1.Image, info importInfo, progress Progress) (*Template, error) {
	if err := checkName(info.name); err != nil {
		return nil, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	digest := cfgName.String()
	if _, ok := s.loadImage(digest); !ok {
		if err := s.build(ctx, img, digest, info, progress); err != nil {
			return nil, err
		}
	} else {
		progress.Phase(fmt.Sprintf("image %s is already in the store", short(digest)))
	}
	if err := s.Tag(ctx, info.name, digest, info.source); err != nil {
		return nil, err
	}
	return s.Get(info.name)
}

func short(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// build writes images/<digest>/ for img: flattened layers -> base.ext4,
// files.gz and image.json, assembled in tmp/ and renamed into place.
func (s *Store) build(ctx context.Context, img v1.Image, digest string, info importInfo, progress Progress) (err error) {
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return fmt.Errorf("create template store: %w", err)
	}
	if err := os.MkdirAll(s.imagesDir(), 0o755); err != nil {
		return fmt.Errorf("create template store: %w", err)
	}
	key := strings.ReplaceAll(digest, ":", "-")
	// One build per digest at a time; a second caller waits and reuses it.
	lk, err := state.Acquire(ctx, filepath.Join(s.tmpDir(), key+".lock"))
	if err != nil {
		return err
	}
	defer func() {
		lk.Unlock()
		os.Remove(filepath.Join(s.tmpDir(), key+".lock"))
	}()
	if _, ok := s.loadImage(digest); ok {
		return nil
	}
	work, err := os.MkdirTemp(s.tmpDir(), key+".")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work) // whatever happens, nothing is left in tmp/

	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read image config: %w", err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		return fmt.Errorf("image is for %s, not linux", cf.OS)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read image layers: %w", err)
	}
	openers, err := s.openLayers(ctx, layers, cf.RootFS.DiffIDs, work, info.spool, progress)
	if err != nil {
		return err
	}

	disk := filepath.Join(work, state.TemplateDiskName)
	f, err := os.OpenFile(disk, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	progress.Phase(fmt.Sprintf("building the base disk from %d %s", len(layers), plural(len(layers), "layer", "layers")))
	capture := map[string]*strings.Builder{"etc/passwd": {}, "etc/group": {}}
	pr, pw := io.Pipe()
	var bar Bar
	var tr *tree
	var pl *plan
	var ferr error
	flattened := make(chan struct{})
	go func() {
		defer close(flattened)
		tr, pl, ferr = flatten(openers, pw, func(done, total int64) {
			if bar == nil {
				bar = progress.Bar("base disk", total)
			}
			bar.Set(done)
		}, capture)
		pw.CloseWithError(ferr)
	}()
	cerr := tar2ext4.Convert(pr, f, tar2ext4.MaximumDiskSize(256<<30))
	pr.CloseWithError(errors.New("conversion ended"))
	<-flattened
	if bar != nil {
		bar.Done()
	}
	if cerr != nil { // carries a flattening error too (through the pipe)
		return fmt.Errorf("build base disk: %w", cerr)
	}
	if ferr != nil {
		return fmt.Errorf("build base disk: %w", ferr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := f.Sync(); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := writeFileIndex(filepath.Join(work, state.TemplateFilesName), pl.entries); err != nil {
		return err
	}
	im := Image{
		Digest:         digest,
		ManifestDigest: info.manifest,
		Source:         info.source,
		Arch:           s.Arch,
		Created:        cf.Created.Time,
		Added:          time.Now().UTC(),
		Env:            cf.Config.Env,
		User:           cf.Config.User,
		WorkingDir:     cf.Config.WorkingDir,
		Entrypoint:     cf.Config.Entrypoint,
		Cmd:            cf.Config.Cmd,
		Layers:         len(layers),
		ContentSize:    pl.size,
		DiskSize:       st.Size(),
		Files:          len(pl.entries),
		Passwd:         capture["etc/passwd"].String(),
		Group:          capture["etc/group"].String(),
	}
	if len(tr.skipped) > 0 {
		im.Skipped = tr.skipped
	}
	if info.extra != nil {
		info.extra(&im)
	}
	b, _ := json.MarshalIndent(im, "", "  ")
	if err := state.WriteFileAtomic(filepath.Join(work, state.TemplateMetaName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(work, "blobs"))
	final := s.ImageDir(digest)
	if err := os.Rename(work, final); err != nil {
		if _, ok := s.loadImage(digest); ok {
			return nil // someone else finished it
		}
		return fmt.Errorf("store base disk: %w", err)
	}
	if d, err := os.Open(s.imagesDir()); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// openLayers returns an uncompressed-stream opener per layer. Remote layers
// are downloaded first (digest-verified, with a bar each, three at a time),
// since flattening reads every layer twice.
func (s *Store) openLayers(ctx context.Context, layers []v1.Layer, diffIDs []v1.Hash, work string, spool bool, progress Progress) ([]layerOpener, error) {
	openers := make([]layerOpener, len(layers))
	if !spool {
		// Local blobs are not verified by go-containerregistry: check each
		// layer's diff ID (sha256 of the tar) whenever it is read to the end.
		// (Layer.DiffID may hash the blob itself: take the config's.)
		if len(diffIDs) != len(layers) {
			return nil, fmt.Errorf("image config lists %d layers, the manifest %d", len(diffIDs), len(layers))
		}
		for i, l := range layers {
			want := diffIDs[i]
			openers[i] = func() (io.ReadCloser, error) {
				rc, err := l.Uncompressed()
				if err != nil {
					return nil, err
				}
				return &verifying{rc: rc, h: sha256.New(), want: want}, nil
			}
		}
		return openers, nil
	}
	blobs := filepath.Join(work, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(layers))
	sem := make(chan struct{}, 3)
	for i, l := range layers {
		p := filepath.Join(blobs, fmt.Sprintf("layer-%d", i))
		openers[i] = func() (io.ReadCloser, error) { return openBlob(p) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = download(ctx, l, p, i, progress)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return openers, nil
}

func download(ctx context.Context, l v1.Layer, p string, i int, progress Progress) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, _ := l.Size()
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	bar := progress.Bar(fmt.Sprintf("layer %d %s", i+1, short(d.String())), size)
	defer bar.Done()
	var done int64
	buf := make([]byte, 256<<10)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			bar.Set(done)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr // includes a digest mismatch, checked at EOF
		}
	}
	return f.Close()
}

// openBlob opens a downloaded layer, decompressing gzip or zstd.
func openBlob(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &stacked{Reader: zr, closers: []io.Closer{zr, f}}, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &stacked{Reader: zr, closers: []io.Closer{closerFunc(func() error { zr.Close(); return nil }), f}}, nil
	}
	return &stacked{Reader: br, closers: []io.Closer{f}}, nil
}

type stacked struct {
	io.Reader
	closers []io.Closer
}

func (s *stacked) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// verifying fails the read that reaches EOF when the content's sha256 is
// not want.
type verifying struct {
	rc   io.ReadCloser
	h    hash.Hash
	want v1.Hash
}

func (v *verifying) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF && v.want.Algorithm == "sha256" {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("layer content does not match its digest %s (got sha256:%s): the image is damaged", v.want, got)
		}
	}
	return n, err
}

func (v *verifying) Close() error { return v.rc.Close() }

type closerFunc func() error

func (c closerFunc) Close() error { return c() }

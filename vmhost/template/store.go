// Package template is the template store: OCI images turned into read-only
// ext4 root disks that sandboxes boot from (the guest overlays each
// sandbox's writable disk on them).
//
// A template comes from a registry reference (pulled with
// go-containerregistry, authenticated through the user's Docker config and
// credential helpers), a local OCI image layout directory, or an OCI /
// `docker save` archive. Its layers are flattened (whiteouts, opaque
// directories, hard links, symlinks, modes, owners and xattrs as the image
// says; device nodes skipped) and written as ext4 in pure Go by hcsshim's
// tar2ext4. Disks are cached by image config digest, so every sandbox made
// from one image shares one disk, and pulling an image again costs only the
// manifest. Which sandboxes use a template is the caller's knowledge (the
// sandbox registry); Remove asks for it.
//
// Layout under the store directory (names from vmhost/state):
//
//	names.json                    template name -> image digest
//	store.lock                    serialises changes to names.json
//	images/sha256-<hex>/          one image: base.ext4, image.json, files.gz
//	tmp/                          downloads and builds in progress
//
// An image directory appears by one rename once complete; nothing half-made
// is ever under images/.
package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moatsandbox/moat/vmhost/state"
)

// Policy says when Resolve may pull.
type Policy string

const (
	PullAlways  Policy = "always"  // always ask the registry (reuses the disk when the digest is unchanged)
	PullMissing Policy = "missing" // pull only when no local template has the name (default)
	PullNever   Policy = "never"   // never touch the network
)

// ParsePolicy checks a --pull-template value ("" is missing).
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "":
		return PullMissing, nil
	case PullAlways, PullMissing, PullNever:
		return Policy(s), nil
	}
	return "", fmt.Errorf("invalid pull policy %q: use always, missing or never", s)
}

// DefaultPath is PATH in the guest when the image does not set one (the
// guest agent's default).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image is what the store knows about one image (image.json).
type Image struct {
	Digest         string         `json:"digest"` // config digest: the cache key
	ManifestDigest string         `json:"manifest_digest,omitempty"`
	Source         string         `json:"source"` // where it came from (reference, path, "saved from ...")
	Arch           string         `json:"arch"`
	Created        time.Time      `json:"created,omitzero"` // from the image config
	Added          time.Time      `json:"added"`
	Env            []string       `json:"env,omitempty"`
	User           string         `json:"user,omitempty"`
	WorkingDir     string         `json:"working_dir,omitempty"`
	Entrypoint     []string       `json:"entrypoint,omitempty"`
	Cmd            []string       `json:"cmd,omitempty"`
	Layers         int            `json:"layers"`
	ContentSize    int64          `json:"content_size"` // bytes of file content
	DiskSize       int64          `json:"disk_size"`    // bytes of base.ext4
	Files          int            `json:"files"`
	Skipped        map[string]int `json:"skipped,omitempty"`
	// Passwd and Group are the image's /etc/passwd and /etc/group, for
	// checking who may run what.
	Passwd string `json:"passwd,omitempty"`
	Group  string `json:"group,omitempty"`
}

// Template is a named image in the store.
type Template struct {
	Name string `json:"name"`
	Image
	// Disk is the read-only ext4 base disk (vm.Options.BaseDisk).
	Disk string `json:"disk"`

	dir   string
	once  sync.Once
	files fileIndex
	ferr  error
}

// Store is a template store rooted at Dir.
type Store struct {
	Dir  string
	Arch string // GOARCH of the guests (default runtime.GOARCH)
}

// Open returns the store in dir (usually state.Layout.TemplatesDir()).
func Open(dir string) *Store { return &Store{Dir: dir, Arch: runtime.GOARCH} }

func (s *Store) imagesDir() string { return filepath.Join(s.Dir, state.TemplateImagesDirName) }
func (s *Store) tmpDir() string    { return filepath.Join(s.Dir, state.TemplateTmpDirName) }
func (s *Store) namesPath() string { return filepath.Join(s.Dir, state.TemplateNamesName) }
func (s *Store) lockPath() string  { return filepath.Join(s.Dir, state.TemplateLockName) }

// ImageDir is the directory of one image digest ("sha256:...").
func (s *Store) ImageDir(digest string) string {
	return filepath.Join(s.imagesDir(), strings.ReplaceAll(digest, ":", "-"))
}

// DiskPath is the base disk of one image digest.
func (s *Store) DiskPath(digest string) string {
	return filepath.Join(s.ImageDir(digest), state.TemplateDiskName)
}

// nameEntry is one names.json entry.
type nameEntry struct {
	Digest string    `json:"digest"`
	Source string    `json:"source"`
	Added  time.Time `json:"added"`
}

func (s *Store) readNames() (map[string]nameEntry, error) {
	b, err := os.ReadFile(s.namesPath())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]nameEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]nameEntry{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("template store %s is damaged: %w (remove it to start afresh)", s.namesPath(), err)
	}
	return m, nil
}

func (s *Store) writeNames(m map[string]nameEntry) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(s.namesPath(), append(b, '\n'), 0o644)
}

func (s *Store) lock(ctx context.Context) (*state.Lock, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create template store: %w", err)
	}
	return state.Acquire(ctx, s.lockPath())
}

// loadImage reads one image's metadata; ok false when it is not complete.
func (s *Store) loadImage(digest string) (*Image, bool) {
	dir := s.ImageDir(digest)
	b, err := os.ReadFile(filepath.Join(dir, state.TemplateMetaName))
	if err != nil {
		return nil, false
	}
	var im Image
	if json.Unmarshal(b, &im) != nil {
		return nil, false
	}
	if _, err := os.Stat(filepath.Join(dir, state.TemplateDiskName)); err != nil {
		return nil, false
	}
	return &im, true
}

// Image returns what the store knows about the image with this config
// digest, named or not (a sandbox keeps its image after `template rm -f`).
func (s *Store) Image(digest string) (*Image, error) {
	im, ok := s.loadImage(digest)
	if !ok {
		return nil, fmt.Errorf("image %s is missing or incomplete in the template store %s", digest, s.Dir)
	}
	return im, nil
}

// ExecEnv is env over the image's environment: the image's entries (PATH
// and the rest of its config Env) first, a later KEY replacing an earlier
// one, so each key appears once.
func (im *Image) ExecEnv(env []string) []string {
	return MergeEnv(im.Env, env)
}

// MergeEnv appends over to base, a later KEY replacing an earlier one
// (getenv takes the first match, so duplicates must not reach the guest).
func MergeEnv(base, over []string) []string {
	seen := map[string]int{}
	var out []string
	for _, kv := range append(append([]string(nil), base...), over...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			out[i] = kv
			continue
		}
		seen[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func (s *Store) template(name string, e nameEntry) (*Template, bool) {
	im, ok := s.loadImage(e.Digest)
	if !ok {
		return nil, false
	}
	return &Template{Name: name, Image: *im, Disk: s.DiskPath(e.Digest), dir: s.ImageDir(e.Digest)}, true
}

// Get returns the local template called name.
func (s *Store) Get(name string) (*Template, error) {
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	e, ok := names[name]
	if !ok {
		return nil, &NotFoundError{Name: name}
	}
	t, ok := s.template(name, e)
	if !ok {
		return nil, fmt.Errorf("template %q: its image %s is missing or incomplete in %s; pull or load it again", name, e.Digest, s.Dir)
	}
	return t, nil
}

// NotFoundError says no local template has the name.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no local template %q (see `moat template ls`)", e.Name)
}

// List returns every named template, sorted by name.
func (s *Store) List() ([]*Template, error) {
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	var out []*Template
	for n, e := range names {
		if t, ok := s.template(n, e); ok {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Tag gives the image digest the name (replacing what the name had).
func (s *Store) Tag(ctx context.Context, name, digest, source string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, ok := s.loadImage(digest); !ok {
		return fmt.Errorf("image %s is not in the template store", digest)
	}
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	names, err := s.readNames()
	if err != nil {
		return err
	}
	names[name] = nameEntry{Digest: digest, Source: source, Added: time.Now().UTC()}
	return s.writeNames(names)
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "\x00\n") || len(name) > 255 {
		return fmt.Errorf("invalid template name %q", name)
	}
	return nil
}

// InUse reports which sandboxes use an image digest.
type InUse func(digest string) []string

// Remove drops the name. The image's disk is deleted too when no other name
// and no sandbox uses it. While sandboxes use it, Remove refuses unless
// force; with force the name goes and the disk stays for those sandboxes
// until none uses it (GC removes it then).
func (s *Store) Remove(ctx context.Context, name string, force bool, inUse InUse) error {
	l, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer l.Unlock()
	names, err := s.readNames()
	if err != nil {
		return err
	}
	e, ok := names[name]
	if !ok {
		return &NotFoundError{Name: name}
	}
	var users []string
	if inUse != nil {
		users = inUse(e.Digest)
	}
	if len(users) > 0 && !force {
		return fmt.Errorf("template %q is used by %s %s; remove %s first, or use -f (the disk then stays until no sandbox uses it)",
			name, plural(len(users), "sandbox", "sandboxes"), strings.Join(users, ", "), plural(len(users), "it", "them"))
	}
	delete(names, name)
	if err := s.writeNames(names); err != nil {
		return err
	}
	_, err = s.gcLocked(names, inUse)
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// GC deletes images no name and no sandbox uses, and leftovers of builds
// that died. It returns the digests it removed.
func (s *Store) GC(ctx context.Context, inUse InUse) ([]string, error) {
	l, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	names, err := s.readNames()
	if err != nil {
		return nil, err
	}
	return s.gcLocked(names, inUse)
}

func (s *Store) gcLocked(names map[string]nameEntry, inUse InUse) ([]string, error) {
	keep := map[string]bool{}
	for _, e := range names {
		keep[e.Digest] = true
	}
	ents, err := os.ReadDir(s.imagesDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var removed []string
	for _, d := range ents {
		digest := strings.Replace(d.Name(), "-", ":", 1)
		if keep[digest] || (inUse != nil && len(inUse(digest)) > 0) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.imagesDir(), d.Name())); err != nil {
			return removed, err
		}
		removed = append(removed, digest)
	}
	// Builds in progress hold their lock; anything else in tmp is debris.
	tents, _ := os.ReadDir(s.tmpDir())
	for _, d := range tents {
		if strings.HasSuffix(d.Name(), ".lock") {
			continue
		}
		p := filepath.Join(s.tmpDir(), d.Name())
		if lk := buildLockFor(p); lk != "" && state.Held(lk) {
			continue
		}
		os.RemoveAll(p)
	}
	return removed, nil
}

// buildLockFor maps a tmp entry "<key>.<random>" to its build lock.
func buildLockFor(p string) string {
	base := filepath.Base(p)
	i := strings.Index(base, ".")
	if i <= 0 {
		return ""
	}
	return filepath.Join(filepath.Dir(p), base[:i]+".lock")
}

// HasBinary reports whether name is an executable on the image's PATH for
// user (following symlinks inside the image), and where.
func (t *Template) HasBinary(name, user string) (bool, string, error) {
	t.once.Do(func() { t.files, t.ferr = readFileIndex(filepath.Join(t.dir, state.TemplateFilesName)) })
	if t.ferr != nil {
		return false, "", t.ferr
	}
	acct := lookupAccount(t.Passwd, t.Group, user)
	pathVar := DefaultPath
	for _, kv := range t.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if !strings.HasPrefix(dir, "/") {
			continue
		}
		e, at, ok := t.files.resolve(dir + "/" + name)
		if ok && (e.Type == '0' || e.Type == 0) && acct.canExec(e) {
			return true, at, nil
		}
	}
	return false, "", nil
}

// CheckBinary is HasBinary as the error create refuses an image with.
func (t *Template) CheckBinary(name, user string) error {
	ok, _, err := t.HasBinary(name, user)
	if err != nil {
		return fmt.Errorf("template %s: cannot inspect its files: %w", t.Name, err)
	}
	if !ok {
		return fmt.Errorf("template %q has no %q binary on PATH for user %s", t.Name, name, user)
	}
	return nil
}

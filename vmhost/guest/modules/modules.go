// Package modules reads a Linux kernel's modules.dep and modules.builtin and
// computes which .ko files to load, and in which order, to get a set of
// wanted modules. It is pure Go with no dependencies so that both the host
// side asset builder (build/guest) and the guest agent at boot can use it.
//
// Module names follow modprobe's rules: "virtio-rng", "virtio_rng",
// "virtio-rng.ko" and "kernel/drivers/char/hw_random/virtio-rng.ko.xz" all
// name the same module; see Normalize.
//
// Typical use in the guest agent:
//
//	root := "/lib/modules/" + release
//	wanted, _ := modules.ReadList("/etc/moat/modules")
//	paths, err := modules.Resolve(root, wanted) // absolute .ko paths, deepest dependency first
//	for _, p := range paths { finit_module(p) } // tolerate EEXIST
//
// or, equivalently, modules.Load(root, wanted, loader).
package modules

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Normalize returns the canonical module name for a module name or path, as
// modprobe compares them: the directory and a ".ko", ".ko.xz", ".ko.zst" or
// ".ko.gz" suffix are removed and every '-' becomes '_'.
func Normalize(name string) string {
	name = path.Base(filepath.ToSlash(strings.TrimSpace(name)))
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(name, ".ko"+ext) {
			name = strings.TrimSuffix(name, ext)
			break
		}
	}
	name = strings.TrimSuffix(name, ".ko")
	return strings.ReplaceAll(name, "-", "_")
}

// Deps is a parsed modules.dep: for every module file (a path relative to
// /lib/modules/<release>, e.g. "kernel/drivers/virtio/virtio.ko"), the files
// it depends on.
type Deps struct {
	files  []string            // module files in modules.dep order
	byName map[string]string   // Normalize(name) -> file
	deps   map[string][]string // file -> files it depends on, as listed
}

// ParseDep parses modules.dep ("file: dep dep ..." per line, as written by
// depmod). Blank lines and lines starting with '#' are ignored.
func ParseDep(r io.Reader) (*Deps, error) {
	d := &Deps{byName: map[string]string{}, deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		file = strings.TrimSpace(file)
		if !ok || file == "" {
			return nil, fmt.Errorf("modules.dep line %d: no \"file:\" in %q", n, line)
		}
		if _, dup := d.deps[file]; dup {
			return nil, fmt.Errorf("modules.dep line %d: %s listed twice", n, file)
		}
		d.files = append(d.files, file)
		d.deps[file] = strings.Fields(rest)
		name := Normalize(file)
		if _, dup := d.byName[name]; !dup { // like modprobe, the first entry wins
			d.byName[name] = file
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	return d, nil
}

// ParseBuiltin parses modules.builtin (one module path per line) into a set
// of normalized names.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[Normalize(line)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.builtin: %w", err)
	}
	return set, nil
}

// ParseList parses a list of module names, one per line ('#' starts a
// comment), as in build/guest/modules.txt and the guest's /etc/moat/modules.
// Names are returned as written (not normalized), in order.
func ParseList(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Fields(line) {
			names = append(names, f)
		}
	}
	return names, sc.Err()
}

// ReadList is ParseList on a file.
func ReadList(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseList(f)
}

// Files returns every module file in modules.dep order.
func (d *Deps) Files() []string { return append([]string(nil), d.files...) }

// Path returns the module file (relative to /lib/modules/<release>) for a
// module name, and whether modules.dep knows it.
func (d *Deps) Path(name string) (string, bool) {
	f, ok := d.byName[Normalize(name)]
	return f, ok
}

// Has reports whether modules.dep knows the module.
func (d *Deps) Has(name string) bool { _, ok := d.Path(name); return ok }

// DepsOf returns the files a module file directly depends on, as listed.
func (d *Deps) DepsOf(file string) []string { return append([]string(nil), d.deps[file]...) }

// Order returns the module files (relative paths, as in modules.dep) to load
// so that every wanted module is loaded: the closure of the wanted modules
// over their dependencies, each file after everything it depends on (deepest
// dependency first), each file once. The result is deterministic: wanted
// modules are taken in the given order and each module's dependencies in the
// reverse of their modules.dep order, which is the order modprobe uses.
//
// A wanted name that is in builtin (normalized names, see ParseBuiltin; may
// be nil) is skipped. A wanted name that is neither a module nor built in, a
// dependency that modules.dep does not list itself, and a dependency cycle
// are errors.
func (d *Deps) Order(wanted []string, builtin map[string]bool) ([]string, error) {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []string
	var stack []string
	var visit func(file string) error
	visit = func(file string) error {
		switch state[file] {
		case done:
			return nil
		case visiting:
			i := len(stack) - 1
			for i > 0 && stack[i] != file {
				i--
			}
			cyc := append(append([]string(nil), stack[i:]...), file)
			return fmt.Errorf("dependency cycle: %s", strings.Join(cyc, " -> "))
		}
		deps, ok := d.deps[file]
		if !ok {
			return fmt.Errorf("%s is a dependency of %s but has no modules.dep entry", file, stack[len(stack)-1])
		}
		state[file] = visiting
		stack = append(stack, file)
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i]); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[file] = done
		out = append(out, file)
		return nil
	}
	for _, w := range wanted {
		name := Normalize(w)
		if name == "" {
			continue
		}
		file, ok := d.byName[name]
		if !ok {
			if builtin[name] {
				continue
			}
			return nil, fmt.Errorf("module %s: not in modules.dep and not built in", w)
		}
		if err := visit(file); err != nil {
			return nil, fmt.Errorf("module %s: %w", w, err)
		}
	}
	return out, nil
}

// WriteDep writes modules.dep lines for the given files only (e.g. an Order
// result), in modules.dep's original order, so that a filtered tree stays
// consistent. Every dependency of a written file must itself be in files.
func (d *Deps) WriteDep(w io.Writer, files []string) error {
	in, left := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		in[f], left[f] = true, true
	}
	bw := bufio.NewWriter(w)
	for _, f := range d.files {
		if !in[f] {
			continue
		}
		for _, dep := range d.deps[f] {
			if !in[dep] {
				return fmt.Errorf("%s depends on %s, which is not included", f, dep)
			}
		}
		if len(d.deps[f]) == 0 {
			fmt.Fprintf(bw, "%s:\n", f)
		} else {
			fmt.Fprintf(bw, "%s: %s\n", f, strings.Join(d.deps[f], " "))
		}
		delete(left, f)
	}
	if len(left) > 0 {
		var missing []string
		for f := range left {
			missing = append(missing, f)
		}
		sort.Strings(missing)
		return fmt.Errorf("not in modules.dep: %s", strings.Join(missing, ", "))
	}
	return bw.Flush()
}

// ReadTree reads root/modules.dep and, if present, root/modules.builtin,
// where root is a /lib/modules/<release> directory.
func ReadTree(root string) (*Deps, map[string]bool, error) {
	f, err := os.Open(filepath.Join(root, "modules.dep"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	d, err := ParseDep(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	builtin := map[string]bool{}
	if b, err := os.Open(filepath.Join(root, "modules.builtin")); err == nil {
		defer b.Close()
		if builtin, err = ParseBuiltin(b); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
	} else if !os.IsNotExist(err) {
		return nil, nil, err
	}
	return d, builtin, nil
}

// Resolve reads the tree at root (a /lib/modules/<release> directory) and
// returns the absolute paths of the .ko files to load, in load order, for the
// wanted module names (see Deps.Order).
func Resolve(root string, wanted []string) ([]string, error) {
	d, builtin, err := ReadTree(root)
	if err != nil {
		return nil, err
	}
	files, err := d.Order(wanted, builtin)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		files[i] = filepath.Join(root, filepath.FromSlash(f))
	}
	return files, nil
}

// Load resolves wanted at root (see Resolve) and calls load for each module
// file in order, stopping at the first error. load does the actual loading
// (finit_module in the guest agent); it should treat "already loaded"
// (EEXIST) as success.
func Load(root string, wanted []string, load func(path string) error) error {
	paths, err := Resolve(root, wanted)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := load(p); err != nil {
			return fmt.Errorf("loading %s: %w", p, err)
		}
	}
	return nil
}

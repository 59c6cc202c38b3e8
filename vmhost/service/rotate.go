package service

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// RotatingFile is an io.Writer that appends to Path and, when a write would
// take the file past MaxSize bytes, renames it to Path.1 (Path.1 to Path.2,
// and so on, keeping Keep old files) and starts a new one. It is safe for
// concurrent use. A single write larger than MaxSize goes whole into a
// fresh file: lines are never split across files.
type RotatingFile struct {
	Path    string
	MaxSize int64 // bytes; <= 0 means DefaultLogMaxSize
	Keep    int   // old files kept; < 0 means none, 0 means DefaultLogKeep
	// OnRotate, when set, is called with the new file after each rotation
	// (the daemon points its crash output at it).
	OnRotate func(*os.File)

	mu     sync.Mutex
	f      *os.File
	size   int64
	failed int64 // size at which a failed rename was last tried
}

// Defaults of the daemon log: at most (1+DefaultLogKeep) × 10 MiB on disk.
const (
	DefaultLogMaxSize = 10 << 20
	DefaultLogKeep    = 3
)

// OpenRotating opens (creating it 0600 if needed) a rotating log at path.
func OpenRotating(path string, maxSize int64, keep int) (*RotatingFile, error) {
	r := &RotatingFile{Path: path, MaxSize: maxSize, Keep: keep}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) max() int64 {
	if r.MaxSize <= 0 {
		return DefaultLogMaxSize
	}
	return r.MaxSize
}

func (r *RotatingFile) keep() int {
	switch {
	case r.Keep < 0:
		return 0
	case r.Keep == 0:
		return DefaultLogKeep
	}
	return r.Keep
}

func (r *RotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(r.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// File is the file currently written.
func (r *RotatingFile) File() *os.File {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f
}

func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	due := r.size > 0 && r.size+int64(len(p)) > r.max()
	if r.failed > 0 && r.size < r.failed+r.max() {
		due = false // the last rotation failed; retry one MaxSize later
	}
	if due {
		if err := r.rotate(); err != nil {
			// Keep logging into the current file (Windows cannot rename a
			// file another process holds open).
			r.failed = r.size
			fmt.Fprintf(r.f, "moat: log rotation failed: %v\n", err)
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts Path.(k-1) to Path.k ... Path to Path.1 and reopens Path.
func (r *RotatingFile) rotate() error {
	k := r.keep()
	r.f.Close()
	r.f = nil
	var err error
	if k == 0 {
		err = os.Remove(r.Path)
	} else {
		os.Remove(r.name(k))
		for i := k - 1; i >= 1; i-- {
			if _, e := os.Stat(r.name(i)); e == nil {
				os.Rename(r.name(i), r.name(i+1))
			}
		}
		err = os.Rename(r.Path, r.name(1))
	}
	if oerr := r.open(); oerr != nil {
		return oerr
	}
	if err != nil {
		return err
	}
	r.failed = 0
	if r.OnRotate != nil {
		r.OnRotate(r.f)
	}
	return nil
}

func (r *RotatingFile) name(i int) string { return fmt.Sprintf("%s.%d", r.Path, i) }

// Close closes the current file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// Lock is an exclusive advisory file lock (flock(2) on unix, LockFileEx on
// Windows). It is released when Unlock is called or the process dies.
type Lock struct{ f *flock.Flock }

// Acquire blocks until the lock at path is held or ctx ends.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f := flock.New(path)
	ok, err := f.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
	}
	return &Lock{f: f}, nil
}

// TryLock takes the lock at path without waiting; ErrLocked when it is held.
func TryLock(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f := flock.New(path)
	ok, err := f.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, ErrLocked
	}
	return &Lock{f: f}, nil
}

// Held reports whether some process holds the lock at path (it probes with a
// non-blocking lock and releases it at once). A missing file is not held.
func Held(path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	l, err := TryLock(path)
	if err != nil {
		return true
	}
	l.Unlock()
	return false
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.f.Unlock()
}

// Package cpio writes "newc" (SVR4, no CRC) cpio archives, the format the
// Linux kernel unpacks as an initramfs. Output is fully determined by the
// calls made: mtimes are 0 and inode numbers are assigned in order.
package cpio

import (
	"fmt"
	"io"
)

// Unix file type bits, as in stat(2).
const (
	TypeMask = 0o170000
	TypeDir  = 0o040000
	TypeReg  = 0o100000
	TypeLink = 0o120000
	TypeChar = 0o020000
)

// Header describes one entry. Mode holds the type bits and the permissions.
type Header struct {
	Name           string // relative, slash-separated
	Mode           uint32
	UID, GID       uint32
	Size           int64 // bytes of data that follow: file contents or symlink target
	RMajor, RMinor uint32
}

// Writer writes an archive entry by entry: WriteHeader, then exactly Size
// bytes through Write, then the next header. Close writes the trailer.
type Writer struct {
	w       io.Writer
	n       int64 // bytes written so far
	ino     uint32
	pending int64 // data bytes still owed for the current entry
	name    string
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, ino: 1} }

func (w *Writer) raw(p []byte) error {
	n, err := w.w.Write(p)
	w.n += int64(n)
	return err
}

func (w *Writer) pad4() error {
	if rem := w.n % 4; rem != 0 {
		return w.raw(make([]byte, 4-rem))
	}
	return nil
}

func (w *Writer) finishEntry() error {
	if w.pending != 0 {
		return fmt.Errorf("cpio: %s: %d bytes of data missing", w.name, w.pending)
	}
	return w.pad4()
}

func (w *Writer) header(ino uint32, h Header, nlink uint32) error {
	if h.Size < 0 || h.Size > 0xffffffff {
		return fmt.Errorf("cpio: %s is too large", h.Name)
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	// rdevmajor, rdevminor, namesize, check
	s := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
		ino, h.Mode, h.UID, h.GID, nlink, 0, h.Size, 0, 0, h.RMajor, h.RMinor, len(h.Name)+1, 0, h.Name)
	if err := w.raw([]byte(s)); err != nil {
		return err
	}
	return w.pad4()
}

// WriteHeader starts an entry.
func (w *Writer) WriteHeader(h Header) error {
	if err := w.finishEntry(); err != nil {
		return err
	}
	nlink := uint32(1)
	if h.Mode&TypeMask == TypeDir {
		nlink = 2
	}
	if err := w.header(w.ino, h, nlink); err != nil {
		return err
	}
	w.ino++
	w.pending, w.name = h.Size, h.Name
	return nil
}

// Write writes the current entry's data.
func (w *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > w.pending {
		return 0, fmt.Errorf("cpio: %s: more data than its header's size", w.name)
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.pending -= int64(n)
	return n, err
}

// File writes a whole regular file.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	if err := w.WriteHeader(Header{Name: name, Mode: TypeReg | perm, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// Close writes the trailer and pads the archive to 512 bytes, as cpio(1)
// does. It does not close the underlying writer.
func (w *Writer) Close() error {
	if err := w.finishEntry(); err != nil {
		return err
	}
	if err := w.header(0, Header{Name: "TRAILER!!!"}, 1); err != nil {
		return err
	}
	if rem := w.n % 512; rem != 0 {
		return w.raw(make([]byte, 512-rem))
	}
	return nil
}

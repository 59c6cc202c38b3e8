package main

import (
	"compress/gzip"
	"fmt"
	"io"
)

// writeInitramfs writes the tree as a gzip-compressed newc cpio archive, the
// format the Linux kernel unpacks as its initramfs. Output depends only on
// the tree: entries are sorted, mtimes are 0, inode numbers are assigned in
// order, the gzip header carries no name and no time.
func (t *tree) writeInitramfs(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if err := t.writeCpio(zw); err != nil {
		return err
	}
	return zw.Close()
}

func (t *tree) writeCpio(w io.Writer) error {
	cw := &countWriter{w: w}
	ino := uint32(1)
	for _, e := range t.sorted() {
		size, err := e.size()
		if err != nil {
			return err
		}
		if size > 0xffffffff {
			return fmt.Errorf("cpio: %s is too large", e.name)
		}
		nlink := uint32(1)
		if e.typ() == sIFDIR {
			nlink = 2
		}
		if err := cpioHeader(cw, ino, e.mode, uint32(e.uid), uint32(e.gid), nlink, uint32(size), e.major, e.minor, e.name); err != nil {
			return err
		}
		ino++
		switch e.typ() {
		case sIFLNK:
			if _, err := io.WriteString(cw, e.link); err != nil {
				return err
			}
		case sIFREG:
			r, err := e.open()
			if err != nil {
				return err
			}
			n, err := io.Copy(cw, r)
			r.Close()
			if err != nil {
				return err
			}
			if n != size {
				return fmt.Errorf("cpio: %s changed size while reading", e.name)
			}
		}
		if err := cw.pad4(); err != nil {
			return err
		}
	}
	if err := cpioHeader(cw, 0, 0, 0, 0, 1, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	// Pad the archive to a 512-byte boundary like cpio(1) does.
	if rem := cw.n % 512; rem != 0 {
		if _, err := cw.Write(make([]byte, 512-rem)); err != nil {
			return err
		}
	}
	return nil
}

func cpioHeader(cw *countWriter, ino, mode, uid, gid, nlink, size, rmajor, rminor uint32, name string) error {
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
	// rdevmajor, rdevminor, namesize, check
	_, err := fmt.Fprintf(cw, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, uid, gid, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(cw, name+"\x00"); err != nil {
		return err
	}
	return cw.pad4()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) pad4() error {
	if rem := c.n % 4; rem != 0 {
		_, err := c.Write(make([]byte, 4-rem))
		return err
	}
	return nil
}

package main

import (
	"compress/gzip"
	"fmt"
	"io"

	"github.com/moatsandbox/moat/build/guest/cpio"
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
	cw := cpio.NewWriter(w)
	for _, e := range t.sorted() {
		size, err := e.size()
		if err != nil {
			return err
		}
		if err := cw.WriteHeader(cpio.Header{Name: e.name, Mode: e.mode, UID: uint32(e.uid), GID: uint32(e.gid),
			Size: size, RMajor: e.major, RMinor: e.minor}); err != nil {
			return err
		}
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
			_, err = io.Copy(cw, r)
			r.Close()
			if err != nil {
				return fmt.Errorf("%s: %w (changed while reading?)", e.name, err)
			}
		}
	}
	return cw.Close()
}

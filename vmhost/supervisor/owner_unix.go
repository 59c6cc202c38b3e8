//go:build !windows

package supervisor

import (
	"os"
	"syscall"
)

// fileOwner is the uid owning path, 0 when unknown.
func fileOwner(path string) uint32 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

//go:build linux

package passwd

import (
	"os"
	"syscall"
)

// fileUID is the owner of a file, from its stat data.
func fileUID(info os.FileInfo) uint32 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0)
}

//go:build !windows

package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/moatsandbox/moat/app/terminal"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// readOnlyForAgent says why the sandbox's agent user will not be able to
// write the workspace, or "". The agent takes the uid of the user running
// moat (or, for root, of the workspace's owner), so this only happens when
// root runs moat on a root-owned folder that others cannot write.
func readOnlyForAgent(dir string) string {
	if os.Getuid() != 0 || dir == "" {
		return ""
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != 0 || fi.Mode().Perm()&0o002 != 0 {
		return ""
	}
	return fmt.Sprintf("%s belongs to root and others may not write it, so the sandbox's agent user (uid %d) can read it but not write it; to let it write, `chown -R %d %s` (the agent then takes that uid), or run it as `moat exec -u root`", dir, protocol.DefaultUID, protocol.DefaultUID, terminal.ShellQuote(dir))
}

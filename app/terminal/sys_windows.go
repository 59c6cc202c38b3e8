package terminal

import (
	"os/exec"
	"syscall"
)

const createNewConsole = 0x00000010

func setSysProcAttr(cmd *exec.Cmd, c Command) {
	a := &syscall.SysProcAttr{CmdLine: c.CmdLine}
	if c.NewConsole {
		a.CreationFlags |= createNewConsole
	}
	cmd.SysProcAttr = a
}

package daemon

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/state"
)

// SuperviseCommand is the hidden subcommand that runs a supervisor.
const SuperviseCommand = "_supervise"

// ExecLauncher starts `<Exe> _supervise NAME` as a detached process in its
// own session, its output appended to the sandbox's supervisor log.
type ExecLauncher struct {
	Exe string // default os.Executable()
	L   *state.Layout
}

func (x *ExecLauncher) Launch(name string) error {
	exe := x.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	reg := &sandbox.Registry{L: x.L}
	r, err := reg.Get(name)
	if err != nil {
		return err
	}
	p := reg.Paths(r)
	logf, err := os.OpenFile(p.SupervisorLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open supervisor log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, SuperviseCommand, name)
	cmd.Env = append(os.Environ(), state.EnvHome+"="+x.L.Home)
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it if it exits while we live
	return nil
}

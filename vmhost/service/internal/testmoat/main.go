// Command testmoat is the part of moat that the vmhost/service tests run
// as a real process: `vmhost [--log-level L]` through service.RunDaemon,
// exactly as `moat vmhost` does, and the `_supervise NAME` subcommand its
// ExecLauncher starts (os.Executable). It exists so the tests do not depend
// on the rest of the CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/moatsandbox/moat/vmhost/daemon"
	"github.com/moatsandbox/moat/vmhost/service"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/supervisor"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testmoat vmhost [--log-level L] | _supervise NAME")
		os.Exit(2)
	}
	l, err := state.Default()
	if err == nil {
		switch os.Args[1] {
		case "vmhost":
			level := ""
			if len(os.Args) == 4 && os.Args[2] == "--log-level" {
				level = os.Args[3]
			}
			err = service.RunDaemon(context.Background(), service.DaemonConfig{Layout: l, Version: "servicetest", LogLevel: level})
			if errors.Is(err, daemon.ErrAlreadyRunning) {
				err = fmt.Errorf("%w (socket %s)", err, l.DaemonSocket())
			}
		case daemon.SuperviseCommand:
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			err = supervisor.Run(ctx, supervisor.Config{Layout: l, Name: os.Args[2]})
		default:
			err = fmt.Errorf("unknown command %q", os.Args[1])
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "moat:", err)
		os.Exit(1)
	}
}

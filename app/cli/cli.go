// Package cli is the `moat` command line: cobra commands that talk to the
// vmhost daemon only through its API client (auto-starting the daemon when
// no socket answers), plus the terminal handling of `run` and `exec`.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/internal/version"
	"github.com/moatsandbox/moat/keychain"
	"github.com/moatsandbox/moat/vmhost/state"
)

// exitError carries a remote process's exit code; it prints nothing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type globals struct {
	debug  bool
	socket string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// kc overrides the OS keychain (tests).
	kc *keychain.Keychain
}

// Main runs the CLI with args (without the program name) and returns the
// process exit code. The terminal is restored on every path, panics included.
func Main(args []string) int { return Run(args, os.Stdin, os.Stdout, os.Stderr) }

// Run is Main with explicit standard streams (tests use it). Terminal
// handling applies only when they are *os.File terminals.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	defer func() {
		if r := recover(); r != nil {
			restoreTerminal()
			fmt.Fprintf(g.stderr, "moat: internal error: %v\n", r)
			if g.debug {
				fmt.Fprintf(g.stderr, "%s\n", debug.Stack())
			}
			code = 70
		}
	}()
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	err := root.ExecuteContext(context.Background())
	restoreTerminal()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(g.stderr, "moat: %s\n", oneLine(strings.TrimSpace(err.Error()), g.debug))
	return 1
}

// oneLine keeps an error to one line: its first, plus what QEMU said when
// the report quotes it; --debug prints the whole report (command line,
// console tail) as it is.
func oneLine(msg string, debug bool) string {
	first, rest, multi := strings.Cut(msg, "\n")
	if !multi || debug {
		return msg
	}
	if _, said, ok := strings.Cut(rest, "qemu said:\n"); ok {
		if l, _, _ := strings.Cut(said, "\n"); strings.TrimSpace(l) != "" {
			first += "; qemu said: " + strings.TrimSpace(l)
		}
	}
	return first + " (run with --debug for the full report)"
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "moat",
		Short: "Moat runs coding agents in persistent microVM sandboxes, one per project folder",
		Long: `Moat gives every project folder its own persistent microVM sandbox.

  moat run claude ~/my-project     start (or reuse) the sandbox and attach to Claude Code
  moat run shell ~/my-project      the same with a login shell
  moat ls                          list sandboxes

The first command starts the per-user daemon (moat vmhost) when it is not running.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		Version:           versionString(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := err.Error()
		// pflag quotes Go's parser: `...: strconv.ParseInt: parsing "x": invalid syntax`.
		if i := strings.Index(msg, ": strconv."); i >= 0 {
			kind := "a number"
			if strings.Contains(msg[i:], "ParseBool") {
				kind = "true or false"
			} else if strings.Contains(msg[i:], "ParseInt") || strings.Contains(msg[i:], "ParseUint") {
				kind = "a whole number"
			}
			msg = msg[:i] + ": want " + kind
		}
		return fmt.Errorf("%s (see `%s --help`)", msg, c.CommandPath())
	})
	root.PersistentFlags().BoolVarP(&g.debug, "debug", "D", false, "print debugging information")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "connect to the daemon at this unix socket")
	root.PersistentFlags().MarkHidden("socket")
	run, create, exec, stop, rm, inspect, logs := newRunCmd(g), newCreateCmd(g), newExecCmd(g), newStopCmd(g), newRmCmd(g), newInspectCmd(g), newLogsCmd(g)
	run.ValidArgsFunction = g.completeRun
	create.ValidArgsFunction = g.completeRun
	exec.ValidArgsFunction = g.completeNames(1)
	stop.ValidArgsFunction = g.completeNames(0)
	rm.ValidArgsFunction = g.completeNames(0)
	inspect.ValidArgsFunction = g.completeNames(0)
	logs.ValidArgsFunction = g.completeNames(1)
	root.AddCommand(
		run, create, newLsCmd(g), exec, stop, rm, inspect, logs, newResetCmd(g), newVersionCmd(g),
		newVmhostCmd(g), newSuperviseCmd(g), newLoginCmd(g), newLogoutCmd(g), newServiceCmd(g),
		newTemplateCmd(g), newSaveCmd(g),
	)
	addApp(root, g) // `moat app [PATH...]`, and `moat` alone starts the app
	return root
}

func versionString() string {
	v := "moat " + version.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func layout() (*state.Layout, error) { return state.Default() }

// usageError is an error about the command line itself.
func usageError(c *cobra.Command, format string, a ...any) error {
	return fmt.Errorf("%s (see `%s --help`)", fmt.Sprintf(format, a...), c.CommandPath())
}

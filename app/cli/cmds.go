package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/internal/version"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/daemon"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	vmservice "github.com/moatsandbox/moat/vmhost/service"
	"github.com/moatsandbox/moat/vmhost/supervisor"
)

func newLsCmd(g *globals) *cobra.Command {
	var asJSON, quiet bool
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List sandboxes",
		Args:    noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			l, err := cl.List(c.Context())
			if err != nil {
				return err
			}
			switch {
			case asJSON:
				return printJSON(g.stdout, l)
			case quiet:
				for _, s := range l {
					fmt.Fprintln(g.stdout, s.Name)
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tAGENT\tSTATUS\tWORKSPACE\tCREATED")
			for _, s := range l {
				st := string(s.Status)
				if s.Status == api.StatusError && s.Reason != "" {
					st += ": " + firstLine(s.Reason, 50)
				}
				created := ""
				if !s.CreatedAt.IsZero() {
					created = ago(time.Since(s.CreatedAt))
				}
				agent, ws := s.Agent, s.Workspace()
				if agent == "" {
					agent = "-"
				}
				if ws == "" {
					ws = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, agent, st, ws, created)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	return c
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

func plural(n int, w string) string {
	if n == 1 {
		return "1 " + w
	}
	return fmt.Sprintf("%d %ss", n, w)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// checkNames fails before any change when a name is unknown.
func checkNames(ctx context.Context, cl *api.Client, names []string, allowUnreadable bool) error {
	for _, n := range names {
		if _, err := cl.Get(ctx, n); err != nil {
			if allowUnreadable && errors.Is(err, sandbox.ErrUnreadable) {
				continue
			}
			if errors.Is(err, sandbox.ErrNotFound) {
				return fmt.Errorf("no sandbox named %q (see `moat ls`)", n)
			}
			return err
		}
	}
	return nil
}

func newStopCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "stop NAME...",
		Short: "Stop sandboxes (their disks and state are kept)",
		Args:  needNames,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			if err := checkNames(c.Context(), cl, args, false); err != nil {
				return err
			}
			for _, n := range args {
				if _, err := cl.Stop(c.Context(), n, force); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "power off at once instead of shutting down cleanly")
	return c
}

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Stop and remove sandboxes with their disks and state",
		Args:    needNames,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			if err := checkNames(c.Context(), cl, args, force); err != nil {
				return err
			}
			for _, n := range args {
				if err := cl.Remove(c.Context(), n, force); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "power off at once; also remove a sandbox whose state is unreadable")
	return c
}

func newInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Print sandboxes as JSON",
		Args:  needNames,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			var out []*api.Sandbox
			for _, n := range args {
				s, err := cl.Get(c.Context(), n)
				if err != nil {
					if errors.Is(err, sandbox.ErrNotFound) {
						return fmt.Errorf("no sandbox named %q (see `moat ls`)", n)
					}
					return err
				}
				out = append(out, s)
			}
			return printJSON(g.stdout, out)
		},
	}
}

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	c := &cobra.Command{
		Use:   "logs [-f] NAME",
		Short: "Print a sandbox's boot and console log",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(c.Context())
			defer cancel()
			rc, err := cl.Logs(ctx, args[0], follow)
			if err != nil {
				if errors.Is(err, sandbox.ErrNotFound) {
					return fmt.Errorf("no sandbox named %q (see `moat ls`)", args[0])
				}
				return err
			}
			defer rc.Close()
			_, err = io.Copy(g.stdout, rc)
			if ctx.Err() != nil {
				return nil // interrupted while following
			}
			return err
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output while the sandbox runs")
	return c
}

func newResetCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "reset",
		Short: "Stop every sandbox and remove all sandboxes (templates and credentials stay)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			l, err := cl.List(c.Context())
			if err != nil {
				return err
			}
			if !force {
				if _, tty := isTerminal(g.stdin); !tty {
					return fmt.Errorf("reset removes all %d sandboxes and their disks; pass -f to confirm", len(l))
				}
				fmt.Fprintf(g.stderr, "This stops and removes all %d sandboxes and their disks. Continue? [y/N] ", len(l))
				ans, _ := bufio.NewReader(g.stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return errors.New("reset cancelled")
				}
			}
			res, err := cl.Reset(c.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %d sandboxes\n", len(res.Removed))
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return c
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version (and the running daemon's)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintln(g.stdout, versionString())
			if cl, err := g.connect(c.Context(), false); err == nil {
				if v, err := cl.Version(c.Context()); err == nil {
					fmt.Fprintf(g.stdout, "daemon: moat %s (API v%d, pid %d)\n", v.Version, v.API, v.PID)
				}
			}
			return nil
		},
	}
}

func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func newVmhostCmd(g *globals) *cobra.Command {
	var stop bool
	var logLevel string
	c := &cobra.Command{
		Use:   "vmhost",
		Short: "Run the per-user daemon (started automatically by other commands)",
		Long: `Run the per-user daemon that serves the API on a unix socket in the state
directory. Other commands start it in the background when it is not running.
Sandboxes run in their own supervisor processes and survive daemon restarts.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			l, err := layout()
			if err != nil {
				return err
			}
			if stop {
				cl, err := g.connect(c.Context(), false)
				if err != nil {
					return err
				}
				v, _ := cl.Version(c.Context())
				if err := cl.Shutdown(c.Context()); err != nil {
					return err
				}
				for i := 0; i < 100; i++ {
					if ping(c.Context(), cl) != nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if v != nil {
					fmt.Fprintf(g.stdout, "stopped the daemon (pid %d); sandboxes keep running\n", v.PID)
				}
				return nil
			}
			ignoreHangup()
			// RunDaemon handles SIGTERM/SIGINT itself (and the Windows SCM),
			// logs to the rotating vmhost.log, and runs the daemon.
			err = vmservice.RunDaemon(c.Context(), vmservice.DaemonConfig{Layout: l, Version: version.Version, LogLevel: logLevel})
			if errors.Is(err, daemon.ErrAlreadyRunning) {
				return fmt.Errorf("%w (socket %s)", err, l.DaemonSocket())
			}
			return err
		},
	}
	c.Flags().BoolVar(&stop, "stop", false, "ask the running daemon to exit (sandboxes keep running)")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (the log is vmhost.log in the state directory)")
	return c
}

func newSuperviseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    daemon.SuperviseCommand + " NAME",
		Short:  "Own one sandbox's VM (internal; started by the daemon)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			l, err := layout()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(c.Context())
			defer cancel()
			ignoreHangup()
			return supervisor.Run(ctx, supervisor.Config{Layout: l, Name: args[0]})
		},
	}
}

// needNames asks for at least one sandbox name, saying where to find them.
func needNames(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s needs at least one sandbox name; `moat ls` lists them", c.Name())
	}
	return nil
}

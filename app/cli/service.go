package cli

import (
	"github.com/spf13/cobra"

	vmservice "github.com/moatsandbox/moat/vmhost/service"
)

// newServiceCmd is `moat service install|uninstall|start|stop|restart|status`:
// the VM host daemon as a per-user service (systemd user unit, launchd
// agent; a system service on Windows). See package vmhost/service.
func newServiceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "service",
		Short: "Install the VM host daemon as a service that starts at login",
		Long: `Install, control and inspect the VM host daemon (moat vmhost) as a service:
a systemd user unit on Linux, a LaunchAgent on macOS, a Windows service
(installing it needs an elevated prompt). Without a service the CLI starts
the daemon on demand; with one it starts the service instead.

Sandboxes run in their own supervisor processes: installing, upgrading,
restarting, stopping or uninstalling the service never stops them.`,
		Args: noArgs,
	}
	sub := func(use, short string, f func(o *vmservice.Ops, c *cobra.Command) error) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  noArgs,
			RunE: func(c *cobra.Command, args []string) error {
				l, err := layout()
				if err != nil {
					return err
				}
				m, err := vmservice.NewManager()
				if err != nil {
					return err
				}
				return f(&vmservice.Ops{M: m, L: l, Out: g.stdout}, c)
			},
		}
	}
	c.AddCommand(
		sub("install", "Install (or update) the service for this binary and start it", func(o *vmservice.Ops, c *cobra.Command) error { return o.Install(c.Context()) }),
		sub("uninstall", "Stop the service's daemon and remove the service (sandboxes are kept)", func(o *vmservice.Ops, c *cobra.Command) error { return o.Uninstall(c.Context()) }),
		sub("start", "Start the service", func(o *vmservice.Ops, c *cobra.Command) error { return o.Start(c.Context()) }),
		sub("stop", "Stop the service's daemon (sandboxes keep running)", func(o *vmservice.Ops, c *cobra.Command) error { return o.Stop(c.Context()) }),
		sub("restart", "Restart the service's daemon (sandboxes keep running)", func(o *vmservice.Ops, c *cobra.Command) error { return o.Restart(c.Context()) }),
		sub("status", "Show the service, the daemon and its sandboxes", func(o *vmservice.Ops, c *cobra.Command) error { return o.Status(c.Context()) }),
	)
	return c
}

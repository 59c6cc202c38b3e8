package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/app/desktop"
	"github.com/moatsandbox/moat/vmhost/api"
)

// addApp registers `moat app [PATH...]` and makes `moat` with no arguments
// start the desktop app (in a binary built with the window, in a graphical
// session; otherwise it prints the help as before). `moat --help`, `moat help` and completion
// are cobra's and unchanged.
func addApp(root *cobra.Command, g *globals) {
	run := func(c *cobra.Command, paths []string) error {
		return desktop.Run(desktop.Options{Paths: paths, Connect: func(ctx context.Context) (*api.Client, error) {
			return g.connect(ctx, true)
		}})
	}
	root.AddCommand(&cobra.Command{
		Use:   "app [PATH...]",
		Short: "Start the desktop app (tray icon and window); with folders, run a sandbox for each",
		Long: `Start the desktop app: a tray (menu bar) icon and a window listing the sandboxes.
With PATHs, run Claude in a sandbox for each folder (a file: its folder). When the
app is already running, the folders are handed to it and this command exits.

Set MOAT_APP_CHOOSE_FOLDER=/path to answer the folder chooser without a dialog
(automation and tests).`,
		Args: cobra.ArbitraryArgs,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: run,
	})
	root.Args = cobra.NoArgs
	root.RunE = func(c *cobra.Command, args []string) error {
		if !desktop.CanShow() { // built without the window, or no display (ssh)
			return c.Help()
		}
		return run(c, nil)
	}
}

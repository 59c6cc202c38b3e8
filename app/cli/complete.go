package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/vmhost/agents"
)

// completeNames completes sandbox names from a running daemon (never
// starting one just to complete).
func (g *globals) completeNames(max int) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl, err := g.connect(ctx, false)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		l, err := cl.List(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, s := range l {
			if strings.HasPrefix(s.Name, toComplete) {
				out = append(out, s.Name+"\t"+s.Agent+" "+string(s.Status)+" "+s.Workspace())
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRun completes agents and names first, then directories.
func (g *globals) completeRun(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		var out []string
		for _, a := range agents.Table {
			if strings.HasPrefix(a.Name, toComplete) {
				out = append(out, a.Name+"\t"+a.Description)
			}
		}
		names, _ := g.completeNames(0)(c, args, toComplete)
		return append(out, names...), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

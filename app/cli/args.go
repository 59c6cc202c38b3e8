package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// Argument-count checks whose messages show the command's usage, in place
// of cobra's "accepts 1 arg(s), received 0".

func usageLine(c *cobra.Command) string {
	use := c.Use
	if i := strings.IndexByte(use, ' '); i >= 0 {
		use = use[i:]
	} else {
		use = ""
	}
	return "`" + c.CommandPath() + use + "`"
}

func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(c, "`%s` takes no arguments, got %q", c.CommandPath(), args[0])
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(c, "wrong number of arguments (%d): usage is %s", len(args), usageLine(c))
		}
		return nil
	}
}

func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError(c, "too many arguments (%d): usage is %s", len(args), usageLine(c))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError(c, "missing arguments: usage is %s", usageLine(c))
		}
		return nil
	}
}

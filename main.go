// Command moat runs coding agents in persistent microVM sandboxes. With
// arguments it is the CLI (`moat run`, `moat ls`, ...), `moat vmhost` is the
// per-user daemon, and `moat _supervise NAME` is the internal per-sandbox
// supervisor the daemon starts.
package main

import (
	"os"

	"github.com/moatsandbox/moat/app/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}

package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/template"
)

func newExecCmd(g *globals) *cobra.Command {
	var (
		interactive, tty bool
		withCreds        bool
		envs, envFiles   []string
		dir, user        string
	)
	c := &cobra.Command{
		Use:   "exec [-i] [-t] [-e K=V] [--env-file F] [-w DIR] [-u USER] NAME CMD...",
		Short: "Run a command in a running sandbox",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError(c, "exec needs a sandbox name and a command")
			}
			name, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" { // moat exec NAME -- CMD, as in kubectl
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return usageError(c, "exec needs a command after the sandbox name")
			}
			if _, inTTY := isTerminal(g.stdin); tty && interactive && !inTTY {
				// A terminal would echo piped input back and turn \n into \r\n.
				return usageError(c, "-t needs a terminal on stdin, and stdin is a pipe or file; use -i alone to pipe input")
			}
			env, err := buildEnv(envs, envFiles)
			if err != nil {
				return err
			}
			ctx := c.Context()
			cl, err := g.connect(ctx, true)
			if err != nil {
				return err
			}
			s, err := cl.Get(ctx, name)
			if err != nil {
				if errors.Is(err, sandbox.ErrNotFound) {
					return fmt.Errorf("no sandbox named %q (see `moat ls`)", name)
				}
				return err
			}
			switch s.Status {
			case api.StatusRunning:
			case api.StatusError:
				return fmt.Errorf("sandbox %s is not running (%s); start it again with `moat run %s`", name, firstLine(s.Reason, 200), name)
			case api.StatusStarting:
				return fmt.Errorf("sandbox %s is still starting; `moat run -d %s` waits until it is up", name, name)
			case api.StatusStopping:
				return fmt.Errorf("sandbox %s is stopping; start it again with `moat run %s` once it has stopped", name, name)
			default:
				return fmt.Errorf("sandbox %s is %s; start it with `moat run %s`", name, s.Status, name)
			}
			switch {
			case dir == "":
				dir = s.Workspace()
			case !path.IsAbs(dir):
				// Relative to the workspace, where the command would start.
				dir = path.Join(s.Workspace(), dir)
			}
			if tty {
				if t := os.Getenv("TERM"); t != "" {
					env = append(env, "TERM="+t)
				}
			}
			if withCreds {
				ag, err := agents.Lookup(s.Agent)
				if err != nil {
					return err
				}
				// -e and --env-file entries override credentials.
				env = template.MergeEnv(g.credentials(ag), env)
			}
			// The daemon puts the template image's env (PATH...) under these.
			req := api.ExecRequest{Argv: argv, Env: env, Dir: dir, User: user, TTY: tty, Stdin: interactive}
			code, err := g.attach(ctx, cl, name, req)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open and send it to the command")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	fl.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable (K=V, or K to pass the host's value)")
	fl.StringArrayVar(&envFiles, "env-file", nil, "read environment variables from a file (K=V lines)")
	fl.StringVarP(&dir, "workdir", "w", "", "working directory in the sandbox (default: the workspace; a relative path is taken inside it)")
	fl.StringVarP(&user, "user", "u", "", "user name or uid (default: agent)")
	fl.BoolVar(&withCreds, "credentials", false, "pass the sandbox agent's credentials (from the keychain or environment), as moat run does")
	return c
}

// buildEnv collects -e and --env-file entries; a bare KEY takes the host's
// value (and is skipped when unset), as docker does.
func buildEnv(envs, files []string) ([]string, error) {
	var out []string
	add := func(kv, where string) error {
		k, _, hasEq := strings.Cut(kv, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("invalid environment variable %q%s: use KEY=VALUE", redactValue(kv), where)
		}
		if !hasEq {
			if v, ok := os.LookupEnv(k); ok {
				out = append(out, k+"="+v)
			}
			return nil
		}
		out = append(out, kv)
		return nil
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("env file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		n := 0
		for sc.Scan() {
			n++
			l := strings.TrimSpace(sc.Text())
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if err := add(l, fmt.Sprintf(" in %s line %d", f, n)); err != nil {
				fh.Close()
				return nil, err
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("env file %s: %w", f, err)
		}
	}
	for _, e := range envs {
		if err := add(e, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// redactValue keeps a key but never echoes a value (it may be a secret).
func redactValue(kv string) string {
	if k, _, ok := strings.Cut(kv, "="); ok {
		return k + "=…"
	}
	return kv
}

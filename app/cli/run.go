package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/keychain"
	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
)

type createFlags struct {
	name     string
	template string
	pull     string
	cpus     int
	memory   string
	force    bool
	quiet    bool
}

func (f *createFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.name, "name", "", "sandbox name (default <agent>-<folder>)")
	c.Flags().StringVarP(&f.template, "template", "t", "", "template for a new sandbox: a local template, an image reference, an OCI layout or archive; \"base\" is the bare guest (default: the agent's)")
	c.Flags().StringVar(&f.pull, "pull-template", "missing", "pull the template: always, missing or never")
	c.Flags().IntVar(&f.cpus, "cpus", 0, "virtual CPUs for a new sandbox (default 2)")
	c.Flags().StringVar(&f.memory, "memory", "", "memory for a new sandbox, e.g. 4g or 2048m (default 2g)")
	c.Flags().BoolVar(&f.force, "force", false, "allow the filesystem root or your home directory as a workspace")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "do not show progress")
}

// parseMemory reads 4g, 4096m, 4096 (MiB).
func parseMemory(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "gib"), strings.HasSuffix(t, "gb"), strings.HasSuffix(t, "g"):
		mult, t = 1024, strings.TrimRight(t, "gib")
	case strings.HasSuffix(t, "mib"), strings.HasSuffix(t, "mb"), strings.HasSuffix(t, "m"):
		t = strings.TrimRight(t, "mib")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid --memory %q: use a size like 4g or 2048m", s)
	}
	return n * mult, nil
}

// request builds a create request from AGENT WORKSPACE EXTRA... .
func (f *createFlags) request(c *cobra.Command, agent string, wsArgs []string, agentArgs []string) (sandbox.Request, error) {
	if _, err := agents.Lookup(agent); err != nil {
		return sandbox.Request{}, err
	}
	if c.Flags().Changed("name") && f.name == "" {
		return sandbox.Request{}, usageError(c, "--name is empty: give a name, or leave --name out for the default <agent>-<folder>")
	}
	if f.name != "" {
		if err := sandbox.ValidateName(f.name); err != nil {
			return sandbox.Request{}, err
		}
	}
	mem, err := parseMemory(f.memory)
	if err != nil {
		return sandbox.Request{}, err
	}
	if f.cpus < 0 {
		return sandbox.Request{}, fmt.Errorf("invalid --cpus %d", f.cpus)
	}
	if len(wsArgs) == 0 {
		wd, err := os.Getwd()
		if err != nil {
			return sandbox.Request{}, err
		}
		wsArgs = []string{wd}
	}
	req := sandbox.Request{Agent: agent, Name: f.name, Template: f.template, CPUs: f.cpus, MemoryMiB: mem, AgentArgs: agentArgs, Force: f.force}
	for _, a := range wsArgs {
		w, err := sandbox.ParseWorkspace(a, f.force)
		if err != nil {
			return sandbox.Request{}, err
		}
		req.Workspaces = append(req.Workspaces, w)
	}
	return req, nil
}

func splitDash(c *cobra.Command, args []string) ([]string, []string) {
	if d := c.ArgsLenAtDash(); d >= 0 {
		return args[:d], args[d:]
	}
	return args, nil
}

func newRunCmd(g *globals) *cobra.Command {
	var f createFlags
	var detach bool
	c := &cobra.Command{
		Use:   "run AGENT [WORKSPACE] [EXTRA_WORKSPACE[:ro]...] [-- AGENT_ARGS...] | run NAME [-- AGENT_ARGS...]",
		Short: "Create a sandbox if needed, start it and attach to its agent",
		Long: `Run an agent in the sandbox of a workspace (default: the current directory).
The same agent and workspace always reuse their sandbox; --name makes another.
Agents: ` + strings.Join(agents.Names(), ", ") + `.
Arguments after -- go to the agent (claude gets --dangerously-skip-permissions by default).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			pos, agentArgs := splitDash(c, args)
			if len(pos) == 0 {
				return usageError(c, "run needs an agent (%s) or a sandbox name", strings.Join(agents.Names(), ", "))
			}
			ctx := c.Context()
			if _, err := agents.Lookup(pos[0]); err == nil {
				req, err := f.request(c, pos[0], pos[1:], agentArgs)
				if err != nil {
					return err
				}
				req.Reuse = true
				return g.runAgent(ctx, req, agentArgs, detach, f.quiet, f.pull)
			}
			// run NAME
			name := pos[0]
			if len(pos) > 1 {
				return usageError(c, "%q is not an agent (agents: %s); `moat run NAME` starts an existing sandbox and takes no workspace", name, strings.Join(agents.Names(), ", "))
			}
			if f.name != "" || f.template != "" || f.cpus != 0 || f.memory != "" {
				return usageError(c, "--name, --template, --cpus and --memory apply when creating a sandbox; %s exists already or is not an agent", name)
			}
			cl, err := g.connect(ctx, true)
			if err != nil {
				return err
			}
			s, err := cl.Get(ctx, name)
			if err != nil {
				if errors.Is(err, sandbox.ErrNotFound) {
					return fmt.Errorf("no sandbox or agent named %q (agents: %s; see `moat ls`)", name, strings.Join(agents.Names(), ", "))
				}
				return err
			}
			return g.startAndAttach(ctx, cl, s, agentArgs, detach, f.quiet)
		},
	}
	f.add(c)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "start the sandbox without attaching")
	return c
}

func (g *globals) runAgent(ctx context.Context, req sandbox.Request, agentArgs []string, detach, quiet bool, pull string) error {
	cl, err := g.connect(ctx, true)
	if err != nil {
		return err
	}
	asked := req.Template
	if err := g.resolveTemplate(ctx, cl, &req, pull, quiet); err != nil {
		return err
	}
	res, err := cl.Create(ctx, req)
	if err != nil {
		return err
	}
	if res.Created && g.debug {
		fmt.Fprintf(g.stderr, "moat: created sandbox %s\n", res.Sandbox.Name)
	}
	if res.Created {
		if w := readOnlyForAgent(res.Sandbox.Workspace()); w != "" {
			fmt.Fprintf(g.stderr, "moat: note: %s\n", w)
		}
	}
	// Not progress: said even with -q.
	if s := res.Sandbox; !res.Created &&
		((req.CPUs != 0 && req.CPUs != s.CPUs) || (req.MemoryMiB != 0 && req.MemoryMiB != s.MemoryMiB) || (asked != "" && req.Template != s.Template)) {
		fmt.Fprintf(g.stderr, "moat: note: sandbox %s exists; --template, --cpus and --memory apply only when a sandbox is created (use --name for another)\n", s.Name)
	}
	return g.startAndAttach(ctx, cl, &res.Sandbox, agentArgs, detach, quiet)
}

func (g *globals) startAndAttach(ctx context.Context, cl *api.Client, s *api.Sandbox, agentArgs []string, detach, quiet bool) error {
	ag, err := agents.Lookup(s.Agent)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", s.Name, err)
	}
	pr := g.newProgress(s.Name, quiet)
	if s.Status != api.StatusRunning {
		pr.Phase("starting")
	}
	startCtx, interrupted, stopWatching := watchInterrupt(ctx)
	err = cl.Start(startCtx, s.Name, pr.Phase)
	stopWatching()
	if err != nil {
		pr.Done()
		if interrupted() {
			// The supervisor is the daemon's, not this process's: the boot
			// goes on. Say where things stand rather than vanish.
			fmt.Fprintf(g.stderr, "moat: interrupted; sandbox %s goes on starting in the background: `moat run %s` attaches to it, `moat stop %s` stops it\n", s.Name, s.Name, s.Name)
			return exitError{130}
		}
		return err
	}
	pr.Phase("checking for " + ag.Binary)
	st, err := g.runQuiet(ctx, cl, s.Name, api.ExecRequest{Argv: ag.ProbeArgv()})
	pr.Done()
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("template %q has no %q binary on PATH for user %s; sandbox %s is left running: install it with `moat exec -it -u root %s sh`, or remove the sandbox with `moat rm %s`", s.Template, ag.Binary, protocol.DefaultUser, s.Name, s.Name, s.Name)
	}
	if detach {
		fmt.Fprintln(g.stdout, s.Name) // -q silences progress only; scripts read the name
		return nil
	}
	args := agentArgs
	if args == nil {
		args = s.AgentArgs
	}
	_, inTTY := isTerminal(g.stdin)
	_, outTTY := isTerminal(g.stdout)
	req := api.ExecRequest{
		Argv:  ag.Argv(args),
		Dir:   s.Workspace(),
		TTY:   inTTY && outTTY,
		Stdin: true,
		Env:   g.agentEnv(ag, inTTY && outTTY), // the daemon adds the image's env under it
	}
	code, err := g.attach(ctx, cl, s.Name, req)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// agentEnv is the agent's credentials (keychain first, then this process's
// environment; see keychain) and TERM. They travel in the exec request body
// over the 0600 socket, never in argv, URLs or logs.
func (g *globals) agentEnv(ag agents.Agent, tty bool) []string {
	env := g.credentials(ag)
	if t := os.Getenv("TERM"); tty && t != "" {
		env = append(env, "TERM="+t)
	}
	return env
}

// credentials resolves what the agent needs. A keychain that cannot be
// reached is not fatal for running: it is said once, and the environment
// still counts.
func (g *globals) credentials(ag agents.Agent) []string {
	kc := g.keychain()
	var c keychain.Credentials
	var err error
	if ag.AllCredentials {
		c, err = kc.All()
	} else {
		c, err = kc.ForVars(ag.CredentialEnv)
	}
	if err != nil {
		c, _ = keychain.NewWith(keychain.EmptyBackend{}, keychain.Service, os.Getenv).ForVars(allVars(ag))
		// Say so when it matters: the agent needs a credential and the
		// environment has none (headless machines without a keyring that
		// pass keys by environment stay quiet).
		switch {
		case g.debug:
			fmt.Fprintf(g.stderr, "moat: %v; %s starts without stored credentials\n", err, ag.Name)
		case len(c.Env) == 0 && !ag.AllCredentials && len(ag.CredentialEnv) > 0:
			// One short line on every run; `moat login --status` explains.
			fmt.Fprintf(g.stderr, "moat: note: no keychain to read credentials from and %s is not set; %s starts without them (`moat login --status` says why)\n", strings.Join(ag.CredentialEnv, " or "), ag.Name)
		}
	}
	if g.debug {
		for _, s := range c.Sources {
			fmt.Fprintf(g.stderr, "moat: %s from %s %s\n", s.Provider.Name, s.Source, s.Masked)
		}
	}
	return c.Env
}

func allVars(ag agents.Agent) []string {
	if !ag.AllCredentials {
		return ag.CredentialEnv
	}
	var vars []string
	for _, p := range keychain.Providers {
		vars = append(vars, p.Env...)
	}
	return vars
}

// runQuiet runs a command without stdio and returns its status.
func (g *globals) runQuiet(ctx context.Context, cl *api.Client, name string, req api.ExecRequest) (protocol.ExitStatus, error) {
	conn, err := cl.Exec(ctx, name, req)
	if err != nil {
		return protocol.ExitStatus{}, err
	}
	s, err := api.NewSession(conn)
	if err != nil {
		return protocol.ExitStatus{}, err
	}
	return s.Wait(nil, nil)
}

func newCreateCmd(g *globals) *cobra.Command {
	var f createFlags
	c := &cobra.Command{
		Use:   "create AGENT WORKSPACE [EXTRA_WORKSPACE[:ro]...]",
		Short: "Create a sandbox without starting it",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError(c, "create needs an agent (%s) and a workspace", strings.Join(agents.Names(), ", "))
			}
			req, err := f.request(c, args[0], args[1:], nil)
			if err != nil {
				return err
			}
			cl, err := g.connect(c.Context(), true)
			if err != nil {
				return err
			}
			if err := g.resolveTemplate(c.Context(), cl, &req, f.pull, f.quiet); err != nil {
				return err
			}
			res, err := cl.Create(c.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, res.Sandbox.Name)
			return nil
		},
	}
	f.add(c)
	return c
}

// Package agents is the table of coding agents Moat knows how to run. An
// agent is data: adding one is adding an entry to Table, never a code path.
package agents

import (
	"fmt"
	"sort"
	"strings"
)

// Agent describes how to start one agent inside a sandbox.
type Agent struct {
	// Name is what users type: `moat run NAME`.
	Name string `json:"name"`
	// Binary must be on PATH in the template for the agent to run; Moat
	// checks it before attaching and names it in the error otherwise.
	Binary string `json:"binary"`
	// Command is the argv that starts the agent; DefaultArgs follow it,
	// unless the user passes their own after `--`.
	Command     []string `json:"command"`
	DefaultArgs []string `json:"default_args,omitempty"`
	// CredentialEnv lists the environment variables that carry the agent's
	// credentials (read on the host by the client, sent in the exec body).
	CredentialEnv []string `json:"credential_env,omitempty"`
	// AllCredentials gives the agent every stored credential (the shell,
	// where people run agents by hand).
	AllCredentials bool `json:"all_credentials,omitempty"`
	// Template is the default template for a new sandbox of this agent: a
	// local template of that name (build/templates, `make template`), or
	// else TemplateFallback (an image reference, pulled).
	Template         string `json:"template"`
	TemplateFallback string `json:"template_fallback,omitempty"`
	// Description is one line for help output.
	Description string `json:"description"`
}

// BaseTemplate is the template name for the guest assets' own base disk
// (busybox; no OCI image): `-t base`.
const BaseTemplate = "base"

// loginShell runs bash as a login shell when the template has it, else
// /bin/sh; user arguments after `--` are passed through.
const loginShell = `if command -v bash >/dev/null 2>&1; then exec bash -l "$@"; fi; exec /bin/sh -l "$@"`

// Table is every known agent.
var Table = []Agent{
	{
		Name:             "claude",
		Binary:           "claude",
		Command:          []string{"claude"},
		DefaultArgs:      []string{"--dangerously-skip-permissions"},
		CredentialEnv:    []string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"},
		Template:         "claude",
		TemplateFallback: "docker/sandbox-templates:claude-code",
		Description:      "Claude Code (runs with --dangerously-skip-permissions: the sandbox is the boundary)",
	},
	{
		Name:           "shell",
		Binary:         "sh",
		Command:        []string{"/bin/sh", "-c", loginShell, "sh"},
		AllCredentials: true,
		Template:       BaseTemplate,
		Description:    "a login shell (bash when present), for manual setup",
	},
}

// Lookup returns the named agent.
func Lookup(name string) (Agent, error) {
	for _, a := range Table {
		if a.Name == name {
			return a, nil
		}
	}
	return Agent{}, fmt.Errorf("unknown agent %q (known agents: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the agents, sorted.
func Names() []string {
	var n []string
	for _, a := range Table {
		n = append(n, a.Name)
	}
	sort.Strings(n)
	return n
}

// Argv is the full command line for a run: Command, then args if given,
// else DefaultArgs.
func (a Agent) Argv(args []string) []string {
	argv := append([]string{}, a.Command...)
	if args != nil {
		return append(argv, args...)
	}
	return append(argv, a.DefaultArgs...)
}

// ProbeArgv is a command that exits 0 when the agent's binary is on PATH.
func (a Agent) ProbeArgv() []string {
	return []string{"/bin/sh", "-c", `command -v "$1" >/dev/null 2>&1`, "sh", a.Binary}
}

package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moatsandbox/moat/keychain"
)

func (g *globals) keychain() *keychain.Keychain {
	if g.kc != nil {
		return g.kc
	}
	return keychain.New()
}

func newLoginCmd(g *globals) *cobra.Command {
	var fromStdin, status bool
	c := &cobra.Command{
		Use:   "login [PROVIDER]",
		Short: "Store a credential in the OS keychain (default provider: anthropic)",
		Long: `Store an API key or token in the operating system's keychain, once; every
sandbox whose agent needs it gets it in the agent's environment.

The secret is read from a prompt that does not echo, or with --stdin from
standard input (one line). It is never taken from the command line.

Providers: ` + strings.Join(keychain.IDs(), ", ") + `
  anthropic      ANTHROPIC_API_KEY (claude)
  claude-oauth   CLAUDE_CODE_OAUTH_TOKEN, the token ` + "`claude setup-token`" + ` prints (claude)
  openai, github, gemini   for other agents, and the shell agent gets them all

Precedence: the keychain first, then the variable in moat's own environment.
` + "`moat login --status`" + ` shows what is stored, masked, and where it comes from.`,
		Args: maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			kc := g.keychain()
			if status {
				if len(args) > 0 || fromStdin {
					return usageError(c, "--status takes no provider and no --stdin")
				}
				return g.loginStatus(kc)
			}
			id := "anthropic"
			if len(args) == 1 {
				id = args[0]
			}
			p, err := keychain.Lookup(id)
			if err != nil {
				if looksLikeSecret(id) {
					return errors.New("never pass a secret on the command line (it lands in shell history and process lists); run `moat login PROVIDER` and paste it at the prompt, or pipe it to `moat login PROVIDER --stdin`")
				}
				return err
			}
			secret, err := g.readSecret(p, fromStdin)
			if err != nil {
				return err
			}
			if err := kc.Store(p, secret); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Stored the %s (%s) in the %s; sandboxes get it as %s.\n", p.Name, keychain.Mask(secret), keychainName(), p.Env[0])
			return nil
		},
	}
	c.Flags().BoolVar(&fromStdin, "stdin", false, "read the secret from standard input (one line)")
	c.Flags().BoolVar(&status, "status", false, "list stored credentials, masked, and where each comes from")
	return c
}

func newLogoutCmd(g *globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "logout [PROVIDER]",
		Short: "Remove a stored credential from the OS keychain (default provider: anthropic)",
		Args:  maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			kc := g.keychain()
			var ps []keychain.Provider
			switch {
			case all && len(args) > 0:
				return usageError(c, "--all takes no provider")
			case all:
				ps = keychain.Providers
			default:
				id := "anthropic"
				if len(args) == 1 {
					id = args[0]
				}
				p, err := keychain.Lookup(id)
				if err != nil {
					return err
				}
				ps = []keychain.Provider{p}
			}
			removed := 0
			for _, p := range ps {
				err := kc.Remove(p)
				switch {
				case err == nil:
					removed++
					fmt.Fprintf(g.stdout, "Removed the %s from the %s.\n", p.Name, keychainName())
				case errors.Is(err, keychain.ErrNotFound):
					if !all {
						return fmt.Errorf("no %s is stored in the %s", p.Name, keychainName())
					}
				default:
					return err
				}
			}
			if all && removed == 0 {
				fmt.Fprintln(g.stdout, "Nothing was stored.")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "remove every Moat credential")
	return c
}

func (g *globals) loginStatus(kc *keychain.Keychain) error {
	entries, err := kc.Status()
	if errors.Is(err, keychain.ErrUnavailable) {
		// Still say what the environment provides; the keychain part is
		// reported after the table.
		entries, _ = keychain.NewWith(keychain.EmptyBackend{}, keychain.Service, os.Getenv).Status()
		defer fmt.Fprintf(g.stderr, "moat: the keychain could not be read, so only the environment is shown: %v\n", err)
	} else if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tVARIABLE\tSECRET\tSOURCE")
	for _, e := range entries {
		secret, source := "-", "not set"
		switch e.Source {
		case keychain.SourceKeychain:
			secret, source = e.Masked, keychainName()
		case keychain.SourceEnv:
			secret, source = e.Masked, "environment ($"+e.Var+")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Provider.ID, strings.Join(e.Provider.Env, ","), secret, source)
	}
	return tw.Flush()
}

// readSecret reads one secret without echo from the terminal, or one line
// from stdin with --stdin. Only the line ending is trimmed; anything else
// wrong with it is for Validate to say.
func (g *globals) readSecret(p keychain.Provider, fromStdin bool) (string, error) {
	if !fromStdin {
		f, isTerm := g.stdin.(*os.File)
		if !isTerm || !term.IsTerminal(int(f.Fd())) {
			return "", fmt.Errorf("no terminal to prompt for the %s; pipe it in with `moat login %s --stdin`", p.Name, p.ID)
		}
		fmt.Fprintf(g.stderr, "Paste your %s (%s; input is hidden): ", p.Name, p.Hint)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", fmt.Errorf("read the %s: %v", p.Name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	line, err := bufio.NewReader(io.LimitReader(g.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the %s from stdin: %v", p.Name, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// looksLikeSecret catches `moat login sk-ant-...`.
func looksLikeSecret(s string) bool {
	for _, p := range keychain.Providers {
		for _, pre := range p.Prefixes {
			if strings.HasPrefix(s, pre) {
				return true
			}
		}
	}
	return len(s) > 30
}

// keychainName is what the OS calls its keychain, for messages.
func keychainName() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain"
	case "windows":
		return "Windows Credential Manager"
	default:
		return "Secret Service keyring"
	}
}

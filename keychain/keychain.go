// Package keychain keeps agent credentials (API keys, OAuth tokens) in the
// operating system's keychain — macOS Keychain, Windows Credential Manager,
// the freedesktop Secret Service on Linux — through zalando/go-keyring.
//
// Secrets are read in the user's session (the CLI or the desktop app), never
// by a system service. They are validated on the way in, masked whenever they
// are shown, and there is no plaintext fallback: with no keychain available
// every call fails with ErrUnavailable and a message that says what to
// install or unlock.
//
// Precedence when a sandbox needs a credential: the keychain first, then the
// variable in the calling process's own environment.
package keychain

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unicode"

	"github.com/zalando/go-keyring"
)

// Service is the keychain service name every Moat credential is stored under;
// the account (user) name is the provider ID.
const Service = "moat"

// Provider is one kind of credential.
type Provider struct {
	ID   string // account name in the keychain, and the `moat login` argument
	Name string // for people
	// Env are the variables an agent reads it from; the first is the one Moat sets.
	Env []string
	// Prefixes a well-formed secret starts with (any of them); empty: no check.
	Prefixes []string
	MinLen   int
	MaxLen   int
	// Hint says where to get one.
	Hint string
}

// Providers is the table of known credentials. Adding one is a table entry.
var Providers = []Provider{
	{ID: "anthropic", Name: "Anthropic API key", Env: []string{"ANTHROPIC_API_KEY"},
		Prefixes: []string{"sk-ant-"}, MinLen: 40, MaxLen: 512,
		Hint: "create one at console.anthropic.com → API keys"},
	{ID: "claude-oauth", Name: "Claude long-lived OAuth token", Env: []string{"CLAUDE_CODE_OAUTH_TOKEN"},
		Prefixes: []string{"sk-ant-oat"}, MinLen: 40, MaxLen: 1024,
		Hint: "run `claude setup-token` and paste the token it prints"},
	{ID: "openai", Name: "OpenAI API key", Env: []string{"OPENAI_API_KEY"},
		Prefixes: []string{"sk-"}, MinLen: 20, MaxLen: 512,
		Hint: "create one at platform.openai.com → API keys"},
	{ID: "github", Name: "GitHub token", Env: []string{"GH_TOKEN", "GITHUB_TOKEN"},
		Prefixes: []string{"ghp_", "github_pat_", "gho_", "ghu_", "ghs_"}, MinLen: 20, MaxLen: 512,
		Hint: "run `gh auth token`, or create a fine-grained token in GitHub settings"},
	{ID: "gemini", Name: "Gemini API key", Env: []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"},
		MinLen: 20, MaxLen: 512,
		Hint: "create one in Google AI Studio"},
}

// Lookup finds a provider by ID, accepting a few common spellings.
func Lookup(id string) (Provider, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	switch id {
	case "claude", "anthropic-api-key":
		id = "anthropic"
	case "oauth", "claude-code-oauth", "claude-token":
		id = "claude-oauth"
	case "gh":
		id = "github"
	case "google":
		id = "gemini"
	}
	for _, p := range Providers {
		if p.ID == id {
			return p, nil
		}
	}
	return Provider{}, fmt.Errorf("unknown provider %q; known providers: %s", id, strings.Join(IDs(), ", "))
}

// ForEnv returns the provider that supplies variable name, if any.
func ForEnv(name string) (Provider, bool) {
	for _, p := range Providers {
		for _, e := range p.Env {
			if e == name {
				return p, true
			}
		}
	}
	return Provider{}, false
}

// IDs lists the provider IDs.
func IDs() []string {
	var ids []string
	for _, p := range Providers {
		ids = append(ids, p.ID)
	}
	return ids
}

// Validate checks a secret's shape and says exactly what is wrong. It never
// includes the secret in the error.
func (p Provider) Validate(secret string) error {
	if secret == "" {
		return fmt.Errorf("the %s is empty", p.Name)
	}
	for i, r := range secret {
		switch {
		case r == '\n' || r == '\r':
			return fmt.Errorf("the %s contains a line break at position %d; paste it on one line", p.Name, i+1)
		case unicode.IsSpace(r):
			return fmt.Errorf("the %s contains whitespace at position %d; copy it again without spaces", p.Name, i+1)
		case r < 0x21 || r > 0x7e:
			return fmt.Errorf("the %s contains a character that is not printable ASCII at position %d", p.Name, i+1)
		}
	}
	if len(p.Prefixes) > 0 {
		ok := false
		for _, pre := range p.Prefixes {
			if strings.HasPrefix(secret, pre) {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("the %s should start with %s; this one starts with %q (%s)", p.Name, strings.Join(quoteAll(p.Prefixes), " or "), safePrefix(secret), p.Hint)
		}
	}
	if p.MinLen > 0 && len(secret) < p.MinLen {
		return fmt.Errorf("the %s is too short (%d characters, expected at least %d); was it cut off?", p.Name, len(secret), p.MinLen)
	}
	if p.MaxLen > 0 && len(secret) > p.MaxLen {
		return fmt.Errorf("the %s is too long (%d characters, at most %d)", p.Name, len(secret), p.MaxLen)
	}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// safePrefix shows at most the first 4 characters: enough to recognise a
// pasted key of the wrong kind, never enough to matter.
func safePrefix(s string) string {
	if len(s) < 16 {
		return "…" // too short to show any of it
	}
	return s[:4] + "…"
}

// Mask shows a secret's well-known prefix and its last four characters,
// e.g. "sk-ant-…XyZ9".
func Mask(secret string) string {
	if len(secret) < 12 {
		return "…"
	}
	prefix := ""
	for _, p := range Providers {
		for _, pre := range p.Prefixes {
			if strings.HasPrefix(secret, pre) && len(pre) > len(prefix) {
				prefix = pre
			}
		}
	}
	if prefix == "sk-ant-oat" {
		prefix = "sk-ant-"
	}
	return prefix + "…" + secret[len(secret)-4:]
}

// ErrUnavailable means no keychain service can be reached.
var ErrUnavailable = errors.New("no keychain available")

// ErrNotFound means nothing is stored for the provider.
var ErrNotFound = errors.New("not stored")

// Backend is the keychain storage; the OS keychain in production, a map in
// unit tests of callers.
type Backend interface {
	Set(service, user, secret string) error
	Get(service, user string) (string, error)
	Delete(service, user string) error
}

type osBackend struct{}

func (osBackend) Set(s, u, p string) error        { return keyring.Set(s, u, p) }
func (osBackend) Get(s, u string) (string, error) { return keyring.Get(s, u) }
func (osBackend) Delete(s, u string) error        { return keyring.Delete(s, u) }

// Keychain stores and resolves credentials.
type Keychain struct {
	backend Backend
	service string
	getenv  func(string) string
}

// New uses the operating system's keychain and the process environment.
func New() *Keychain { return &Keychain{backend: osBackend{}, service: Service, getenv: os.Getenv} }

// OS returns the operating system's keychain under another service name
// (tests use a throwaway one so they never touch real credentials).
func OS(service string, getenv func(string) string) *Keychain {
	return NewWith(osBackend{}, service, getenv)
}

// NewWith uses the given backend, service name and environment lookup.
func NewWith(b Backend, service string, getenv func(string) string) *Keychain {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Keychain{backend: b, service: service, getenv: getenv}
}

// Store validates and saves a secret, replacing any stored one.
func (k *Keychain) Store(p Provider, secret string) error {
	if err := p.Validate(secret); err != nil {
		return err
	}
	if err := k.backend.Set(k.service, p.ID, secret); err != nil {
		return mapErr(err, p)
	}
	return nil
}

// Get returns the stored secret.
func (k *Keychain) Get(p Provider) (string, error) {
	s, err := k.backend.Get(k.service, p.ID)
	if err != nil {
		return "", mapErr(err, p)
	}
	return s, nil
}

// Remove deletes a stored secret; removing nothing is ErrNotFound.
func (k *Keychain) Remove(p Provider) error {
	if err := k.backend.Delete(k.service, p.ID); err != nil {
		return mapErr(err, p)
	}
	return nil
}

// Source says where a credential came from.
type Source string

const (
	SourceNone     Source = ""
	SourceKeychain Source = "keychain"
	SourceEnv      Source = "environment"
)

// Entry is one provider's status, safe to print.
type Entry struct {
	Provider Provider
	Source   Source
	Var      string // the environment variable, when Source is SourceEnv
	Masked   string
}

// Status reports every provider: stored in the keychain, found in the
// environment, or absent. A keychain that cannot be reached is an error.
func (k *Keychain) Status() ([]Entry, error) {
	var out []Entry
	for _, p := range Providers {
		e, err := k.resolve(p)
		if err != nil {
			return nil, err
		}
		out = append(out, e.Entry)
	}
	return out, nil
}

type resolved struct {
	Entry
	secret string
}

func (k *Keychain) resolve(p Provider) (resolved, error) {
	s, err := k.Get(p)
	switch {
	case err == nil:
		return resolved{Entry{Provider: p, Source: SourceKeychain, Masked: Mask(s)}, s}, nil
	case errors.Is(err, ErrNotFound):
	default:
		return resolved{}, err
	}
	for _, v := range p.Env {
		if s := k.getenv(v); s != "" {
			return resolved{Entry{Provider: p, Source: SourceEnv, Var: v, Masked: Mask(s)}, s}, nil
		}
	}
	return resolved{Entry: Entry{Provider: p}}, nil
}

// Credentials are environment entries (KEY=VALUE) for a sandbox process plus
// where each came from. Keep them out of logs; print Sources instead.
type Credentials struct {
	Env     []string
	Sources []Entry
}

// ForVars resolves the credentials that supply the given variables (an
// agent's credential list). Variables no provider supplies are ignored;
// providers with nothing stored or set are skipped. If a variable is set in
// the environment but the keychain has the provider, the keychain wins.
func (k *Keychain) ForVars(vars []string) (Credentials, error) {
	var c Credentials
	seen := map[string]bool{}
	for _, v := range vars {
		p, ok := ForEnv(v)
		if !ok || seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		r, err := k.resolve(p)
		if err != nil {
			return Credentials{}, err
		}
		if r.Source == SourceNone {
			continue
		}
		for _, name := range p.Env {
			if contains(vars, name) {
				c.Env = append(c.Env, name+"="+r.secret)
			}
		}
		c.Sources = append(c.Sources, r.Entry)
	}
	return c, nil
}

// All resolves every provider (the shell agent gets everything).
func (k *Keychain) All() (Credentials, error) {
	var vars []string
	for _, p := range Providers {
		vars = append(vars, p.Env...)
	}
	return k.ForVars(vars)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// mapErr turns backend errors into ErrNotFound / ErrUnavailable with a fix.
func mapErr(err error, p Provider) error {
	if errors.Is(err, keyring.ErrNotFound) || errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w", p.Name, ErrNotFound)
	}
	if errors.Is(err, keyring.ErrSetDataTooBig) {
		return fmt.Errorf("the %s is too large for this keychain", p.Name)
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s (%s)", ErrUnavailable, unavailableFix(), redactedCause(err))
}

func unavailableFix() string {
	switch runtime.GOOS {
	case "darwin":
		return "unlock your login keychain (Keychain Access ▸ File ▸ Unlock) and try again"
	case "windows":
		return "Windows Credential Manager did not answer; sign in to a normal (non-service) session and try again"
	default:
		return "no Secret Service answered on the session D-Bus; install and start one (Debian/Ubuntu: apt-get install gnome-keyring; or KeePassXC with Secret Service integration), and unlock it"
	}
}

// redactedCause keeps the backend's message short and on one line.
func redactedCause(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// EmptyBackend stores nothing and finds nothing: with it a Keychain resolves
// credentials from the environment only (used when the OS keychain cannot
// be reached, so running still works).
type EmptyBackend struct{}

func (EmptyBackend) Set(string, string, string) error   { return ErrUnavailable }
func (EmptyBackend) Get(string, string) (string, error) { return "", ErrNotFound }
func (EmptyBackend) Delete(string, string) error        { return ErrNotFound }

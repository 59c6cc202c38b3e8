package keychain

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// mapBackend is an in-memory Backend for the logic tests.
type mapBackend struct {
	m   map[string]string
	err error
}

func (b *mapBackend) Set(s, u, p string) error {
	if b.err != nil {
		return b.err
	}
	b.m[s+"/"+u] = p
	return nil
}
func (b *mapBackend) Get(s, u string) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	v, ok := b.m[s+"/"+u]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}
func (b *mapBackend) Delete(s, u string) error {
	if b.err != nil {
		return b.err
	}
	if _, ok := b.m[s+"/"+u]; !ok {
		return ErrNotFound
	}
	delete(b.m, s+"/"+u)
	return nil
}

const fakeKey = "sk-ant-api03-TESTKEYxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxXyZ9"

func mustProvider(t *testing.T, id string) Provider {
	t.Helper()
	p, err := Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	p := mustProvider(t, "anthropic")
	cases := map[string]string{
		"":             "is empty",
		fakeKey + "\n": "line break at position",
		"sk-ant-api03 with spaces xxxxxxxxxxxxxxxxxxxxxxxx": "whitespace at position 13",
		"sk-proj-" + strings.Repeat("a", 40):                `should start with "sk-ant-"`,
		"sk-ant-short":                                      "too short (12 characters",
		"sk-ant-" + strings.Repeat("a", 600):                "too long",
		"sk-ant-api03-é" + strings.Repeat("a", 40):          "not printable ASCII",
	}
	for secret, want := range cases {
		err := p.Validate(secret)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%.20q…) = %v, want it to say %q", secret, err, want)
		}
		if err != nil && len(secret) > 8 && strings.Contains(err.Error(), secret) {
			t.Errorf("error message leaks the secret: %v", err)
		}
	}
	if err := p.Validate(fakeKey); err != nil {
		t.Fatalf("valid key refused: %v", err)
	}
	if err := mustProvider(t, "claude-oauth").Validate("sk-ant-oat01-" + strings.Repeat("b", 60)); err != nil {
		t.Fatal(err)
	}
}

func TestLookupAndMask(t *testing.T) {
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "known providers: anthropic") {
		t.Fatalf("unknown provider: %v", err)
	}
	if p := mustProvider(t, "claude"); p.ID != "anthropic" {
		t.Fatal(p.ID)
	}
	if got := Mask(fakeKey); got != "sk-ant-…XyZ9" {
		t.Fatalf("Mask = %q", got)
	}
	if got := Mask("ghp_" + strings.Repeat("z", 30) + "ABCD"); got != "ghp_…ABCD" {
		t.Fatalf("Mask = %q", got)
	}
	if got := Mask("short"); got != "…" {
		t.Fatalf("short secrets are fully hidden, got %q", got)
	}
}

func TestPrecedenceKeychainThenEnv(t *testing.T) {
	b := &mapBackend{m: map[string]string{}}
	env := map[string]string{"ANTHROPIC_API_KEY": "sk-ant-from-env-" + strings.Repeat("e", 40), "GH_TOKEN": "ghp_" + strings.Repeat("g", 36)}
	k := NewWith(b, "svc", func(v string) string { return env[v] })

	c, err := k.ForVars([]string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Env) != 1 || c.Env[0] != "ANTHROPIC_API_KEY="+env["ANTHROPIC_API_KEY"] || c.Sources[0].Source != SourceEnv || c.Sources[0].Var != "ANTHROPIC_API_KEY" {
		t.Fatalf("env fallback: %+v", c)
	}
	if err := k.Store(mustProvider(t, "anthropic"), fakeKey); err != nil {
		t.Fatal(err)
	}
	c, _ = k.ForVars([]string{"ANTHROPIC_API_KEY"})
	if c.Env[0] != "ANTHROPIC_API_KEY="+fakeKey || c.Sources[0].Source != SourceKeychain {
		t.Fatalf("keychain must win over the environment: %+v", c.Sources)
	}
	all, _ := k.All()
	if len(all.Env) != 3 { // anthropic, GH_TOKEN + GITHUB_TOKEN from the one github token
		t.Fatalf("All: %v", all.Sources)
	}
	st, err := k.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st {
		if strings.Contains(fmt.Sprint(e), fakeKey) {
			t.Fatalf("status leaks the secret: %+v", e)
		}
	}
}

func TestUnavailableIsClear(t *testing.T) {
	b := &mapBackend{err: errors.New("The name org.freedesktop.secrets was not provided by any .service files")}
	k := NewWith(b, "svc", nil)
	err := k.Store(mustProvider(t, "anthropic"), fakeKey)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "gnome-keyring") {
		t.Fatalf("unavailable: %v", err)
	}
	if _, err := k.Status(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("status with no keychain must fail, not report empty: %v", err)
	}
}

// TestRealSecretService runs against a real Secret Service; build/with-keyring.sh
// provides one (make test uses it).
func TestRealSecretService(t *testing.T) {
	if os.Getenv("MOAT_TEST_SECRET_SERVICE") != "1" {
		if os.Getenv("MOAT_REQUIRE_KEYRING") == "1" {
			t.Fatal("MOAT_REQUIRE_KEYRING=1 but no test Secret Service: run under build/with-keyring.sh")
		}
		t.Skip("no throwaway Secret Service (run under build/with-keyring.sh)")
	}
	service := fmt.Sprintf("moat-test-%d", os.Getpid())
	k := OS(service, nil)
	p := mustProvider(t, "anthropic")
	if _, err := k.Get(p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fresh keyring: %v", err)
	}
	if err := k.Store(p, fakeKey); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got, err := k.Get(p); err != nil || got != fakeKey {
		t.Fatalf("get: %q %v", got, err)
	}
	second := strings.Replace(fakeKey, "XyZ9", "AbC1", 1)
	if err := k.Store(p, second); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got, _ := k.Get(p); got != second {
		t.Fatalf("after overwrite: %q", got)
	}
	st, err := k.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Provider.ID != "anthropic" || st[0].Source != SourceKeychain || st[0].Masked != "sk-ant-…AbC1" {
		t.Fatalf("status: %+v", st[0])
	}
	if err := k.Store(p, "not-a-key"); err == nil {
		t.Fatal("invalid key stored")
	}
	if got, _ := k.Get(p); got != second {
		t.Fatalf("a refused key must leave the stored one alone: %q", got)
	}
	if err := k.Remove(p); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := k.Get(p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := k.Remove(p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

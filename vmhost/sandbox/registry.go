// Package sandbox is the registry of sandboxes: their records on disk, the
// naming rules, workspace validation and the create-or-reuse decision.
//
// Records are JSON files written atomically; creation and removal hold the
// registry lock, so concurrent `moat run` on one workspace yield exactly one
// sandbox. Records never hold status: status is derived from live processes
// by the daemon.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/state"
)

// RecordVersion is the version of the record format.
const RecordVersion = 1

// Record is what Moat remembers about one sandbox.
type Record struct {
	Version   int      `json:"version"`
	ID        string   `json:"id"` // short random hex; keys the run directory
	Name      string   `json:"name"`
	Agent     string   `json:"agent"`
	AgentArgs []string `json:"agent_args,omitempty"` // nil: the agent's defaults
	Template  string   `json:"template"`
	// TemplateDigest is the image (config) digest of an OCI template: its
	// base disk in the template store. Empty for the guest assets' base.
	TemplateDigest string      `json:"template_digest,omitempty"`
	Workspaces     []Workspace `json:"workspaces"` // [0] is the primary workspace
	CPUs           int         `json:"cpus,omitempty"`
	MemoryMiB      int         `json:"memory_mib,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	// NamedByUser is true when --name chose the name.
	NamedByUser bool `json:"named_by_user,omitempty"`
	// Force records --force: the filesystem root or home directory, or a
	// read-only folder holding moat's own files, was shared on purpose.
	Force bool `json:"force,omitempty"`
}

// Workspace returns the primary workspace path.
func (r *Record) Workspace() string {
	if len(r.Workspaces) == 0 {
		return ""
	}
	return r.Workspaces[0].Path
}

// Errors callers map to messages and API codes.
var (
	ErrNotFound   = errors.New("no such sandbox")
	ErrExists     = errors.New("sandbox already exists")
	ErrConflict   = errors.New("sandbox conflict")
	ErrUnreadable = errors.New("sandbox state is unreadable")
)

// Registry reads and writes records under a state layout.
type Registry struct {
	L *state.Layout
}

// Paths returns a record's files.
func (g *Registry) Paths(r *Record) state.Sandbox { return g.L.Sandbox(r.Name, r.ID) }

// Get reads one record.
func (g *Registry) Get(name string) (*Record, error) {
	if err := ValidateName(name); err != nil {
		// An invalid name can never exist; report it as unknown.
		return nil, fmt.Errorf("%w %q", ErrNotFound, name)
	}
	p := g.L.Sandbox(name, "").Record()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox %q: %w: %v", name, ErrUnreadable, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("sandbox %q: %w: %s: %v (remove it with `moat rm -f %s`)", name, ErrUnreadable, p, err, name)
	}
	if r.Name != name || r.ID == "" || len(r.Workspaces) == 0 {
		return nil, fmt.Errorf("sandbox %q: %w: %s is incomplete (remove it with `moat rm -f %s`)", name, ErrUnreadable, p, name)
	}
	if r.Version > RecordVersion {
		return nil, fmt.Errorf("sandbox %q: %w: record version %d is newer than this moat (%d)", name, ErrUnreadable, r.Version, RecordVersion)
	}
	return &r, nil
}

// Entry is one listed sandbox: a record, or the error reading it.
type Entry struct {
	Name   string
	Record *Record
	Err    error
}

// List returns every sandbox directory, sorted by name; unreadable ones
// carry their error instead of a record.
func (g *Registry) List() ([]Entry, error) {
	des, err := os.ReadDir(g.L.SandboxesDir())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		if !de.IsDir() || ValidateName(de.Name()) != nil {
			continue
		}
		r, err := g.Get(de.Name())
		if errors.Is(err, ErrNotFound) {
			continue // a directory being created or removed
		}
		out = append(out, Entry{Name: de.Name(), Record: r, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (g *Registry) lock(ctx context.Context) (*state.Lock, error) {
	if err := g.L.EnsureHome(); err != nil {
		return nil, err
	}
	return state.Acquire(ctx, g.L.RegistryLock())
}

// Request asks for a sandbox: what `moat run` and `moat create` pass.
type Request struct {
	Agent      string      `json:"agent"`
	Name       string      `json:"name,omitempty"` // explicit --name
	Workspaces []Workspace `json:"workspaces"`     // validated; [0] primary
	AgentArgs  []string    `json:"agent_args,omitempty"`
	Template   string      `json:"template,omitempty"`
	// TemplateDigest is the resolved template's image digest (the client
	// resolves and pulls templates; see vmhost/template).
	TemplateDigest string `json:"template_digest,omitempty"`
	CPUs           int    `json:"cpus,omitempty"`
	MemoryMiB      int    `json:"memory_mib,omitempty"`
	// Reuse allows returning an existing sandbox for the same agent and
	// workspace (run); without it an existing match is an error (create).
	Reuse bool `json:"reuse,omitempty"`
	// Force allows the filesystem root and the home directory as workspaces.
	Force bool `json:"force,omitempty"`
}

// Ensure returns the sandbox for req, creating its record when needed. The
// bool is true when it was created.
func (g *Registry) Ensure(ctx context.Context, req Request) (*Record, bool, error) {
	ag, err := agents.Lookup(req.Agent)
	if err != nil {
		return nil, false, err
	}
	if len(req.Workspaces) == 0 {
		return nil, false, errors.New("a workspace is required")
	}
	if err := distinctWorkspaces(req.Workspaces); err != nil {
		return nil, false, err
	}
	if req.Name != "" {
		if err := ValidateName(req.Name); err != nil {
			return nil, false, err
		}
	}
	lk, err := g.lock(ctx)
	if err != nil {
		return nil, false, err
	}
	defer lk.Unlock()

	ws := req.Workspaces[0].Path
	if req.Name != "" {
		r, err := g.Get(req.Name)
		switch {
		case err == nil:
			if !req.Reuse {
				return nil, false, fmt.Errorf("%w: a sandbox named %q exists (for %s); pick another --name or remove it with `moat rm %s`", ErrExists, req.Name, r.Workspace(), req.Name)
			}
			if r.Agent != req.Agent || r.Workspace() != ws {
				return nil, false, fmt.Errorf("%w: sandbox %q is the %s sandbox for %s, not %s for %s; pick another --name", ErrConflict, req.Name, r.Agent, r.Workspace(), req.Agent, ws)
			}
			if err := sameExtras(r, req); err != nil {
				return nil, false, err
			}
			return r, false, nil
		case !errors.Is(err, ErrNotFound):
			return nil, false, err
		}
		return g.create(req, req.Name, ag)
	}

	// No name: find this agent's sandbox for the workspace.
	entries, err := g.List()
	if err != nil {
		return nil, false, err
	}
	var match *Record
	taken := map[string]bool{}
	for _, e := range entries {
		taken[e.Name] = true
		if e.Record == nil || e.Record.Agent != req.Agent || e.Record.Workspace() != ws {
			continue
		}
		if match == nil || (match.NamedByUser && !e.Record.NamedByUser) ||
			(match.NamedByUser == e.Record.NamedByUser && e.Record.CreatedAt.Before(match.CreatedAt)) {
			match = e.Record
		}
	}
	if match != nil {
		if !req.Reuse {
			return nil, false, fmt.Errorf("%w: %s already has a %s sandbox, %q; run it with `moat run %s`, or pass --name to create another", ErrExists, ws, req.Agent, match.Name, match.Name)
		}
		if err := sameExtras(match, req); err != nil {
			return nil, false, err
		}
		return match, false, nil
	}
	name := DefaultName(req.Agent, ws)
	// A sandbox whose record cannot be read may be this workspace's: never
	// create a second one silently beside it (its packages would seem lost).
	for _, e := range entries {
		if e.Record == nil && e.Name == name {
			return nil, false, fmt.Errorf("%w; it may be the sandbox of %s, so none is created beside it (or pass --name to create another)", e.Err, ws)
		}
	}
	if taken[name] {
		name = name + "-" + Suffix(ws)
		for i := 2; taken[name]; i++ {
			name = fmt.Sprintf("%s-%s-%d", DefaultName(req.Agent, ws), Suffix(ws), i)
		}
	}
	return g.create(req, name, ag)
}

func sameExtras(r *Record, req Request) error {
	if len(req.Workspaces) <= 1 {
		return nil
	}
	if !slices.Equal(r.Workspaces[1:], req.Workspaces[1:]) {
		return fmt.Errorf("%w: sandbox %q was created with other extra workspaces (%v); extra workspaces are fixed at creation: remove it with `moat rm %s` or pass --name to create another", ErrConflict, r.Name, r.Workspaces[1:], r.Name)
	}
	return nil
}

func (g *Registry) create(req Request, name string, ag agents.Agent) (*Record, bool, error) {
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, false, err
	}
	r := &Record{
		Version:        RecordVersion,
		ID:             hex.EncodeToString(id),
		Name:           name,
		Agent:          req.Agent,
		AgentArgs:      req.AgentArgs,
		Template:       req.Template,
		TemplateDigest: req.TemplateDigest,
		Workspaces:     req.Workspaces,
		CPUs:           req.CPUs,
		MemoryMiB:      req.MemoryMiB,
		CreatedAt:      time.Now().UTC().Truncate(time.Second),
		NamedByUser:    req.Name != "",
		Force:          req.Force,
	}
	if r.Template == "" {
		r.Template = ag.Template
	}
	p := g.Paths(r)
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create sandbox directory: %w", err)
	}
	if err := g.write(r); err != nil {
		os.RemoveAll(p.Dir)
		return nil, false, err
	}
	return r, true, nil
}

func (g *Registry) write(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := state.WriteFileAtomic(g.Paths(r).Record(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	return nil
}

// Remove deletes a sandbox's directories (record, disk, logs, run dir). The
// caller must have stopped it. A sandbox with an unreadable record can be
// removed by name.
func (g *Registry) Remove(ctx context.Context, name string) error {
	lk, err := g.lock(ctx)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	dir := g.L.Sandbox(name, "").Dir
	if _, err := os.Stat(dir); os.IsNotExist(err) || ValidateName(name) != nil {
		return fmt.Errorf("%w %q", ErrNotFound, name)
	}
	if r, err := g.Get(name); err == nil {
		os.RemoveAll(g.Paths(r).RunDir)
	}
	// Remove the record first so a half-removed sandbox never lists.
	os.Remove(g.L.Sandbox(name, "").Record())
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", name, err)
	}
	return nil
}

// distinctWorkspaces refuses a path listed twice, and one workspace inside
// another: the later mount would hide or shadow the earlier (a project
// listed again with :ro would silently become read-only).
func distinctWorkspaces(ws []Workspace) error {
	for i := range ws {
		for j := range ws {
			if i == j {
				continue
			}
			a, b := ws[i].Path, ws[j].Path
			if a == b && i < j {
				return fmt.Errorf("workspace %s is listed twice; list each folder once (add :ro to make an extra workspace read-only)", a)
			}
			if a != b && within(a, b) {
				return fmt.Errorf("workspace %s is inside workspace %s; share the outer folder only", a, b)
			}
		}
	}
	return nil
}

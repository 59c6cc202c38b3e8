package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatsandbox/moat/vmhost/agents"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
	"github.com/moatsandbox/moat/vmhost/template"
)

// Templates are resolved (pulled, loaded) in the client: registry
// credentials come from the user's Docker config and credential helpers,
// which belong to the user's session like the keychain. The daemon only
// checks that the resolved image's disk is in the store.

func templateStore() (*template.Store, error) {
	l, err := layout()
	if err != nil {
		return nil, err
	}
	return template.Open(l.TemplatesDir()), nil
}

func (g *globals) templateProgress(quiet bool) template.Progress {
	if quiet {
		return template.Discard
	}
	if f, ok := g.stderr.(*os.File); ok {
		return template.AutoProgress(f)
	}
	return template.NewLineProgress(g.stderr)
}

// resolveTemplate fills req.Template and req.TemplateDigest for a sandbox
// about to be created, and refuses a template without the agent's binary.
// An existing sandbox that run would reuse needs nothing.
func (g *globals) resolveTemplate(ctx context.Context, cl *api.Client, req *sandbox.Request, policy string, quiet bool) error {
	pol, err := template.ParsePolicy(policy)
	if err != nil {
		return err
	}
	ag, err := agents.Lookup(req.Agent)
	if err != nil {
		return err
	}
	if req.Reuse {
		list, err := cl.List(ctx)
		if err != nil {
			return err
		}
		for _, s := range list {
			if req.Name != "" && s.Name == req.Name {
				return nil
			}
			if req.Name == "" && s.Agent == req.Agent && len(req.Workspaces) > 0 && s.Workspace() == req.Workspaces[0].Path {
				return nil
			}
		}
	}
	ref := req.Template
	if ref == "" {
		ref = ag.Template
	}
	if ref == agents.BaseTemplate {
		req.Template = ref
		return nil
	}
	st, err := templateStore()
	if err != nil {
		return err
	}
	pr := g.templateProgress(quiet)
	defer pr.Wait()
	opts := template.ResolveOptions{Policy: pol, Progress: pr}
	var tp *template.Template
	if req.Template == "" && ag.TemplateFallback != "" {
		// The agent's default: the local template, else the published one.
		if t, err := st.Get(ag.Template); err == nil {
			tp = t
		} else if tp, err = st.Resolve(ctx, ag.TemplateFallback, opts); err != nil {
			return fmt.Errorf("%w\n(no local template %q either: build it with `make template`, or pass -t)", err, ag.Template)
		}
	} else if tp, err = st.Resolve(ctx, ref, opts); err != nil {
		return err
	}
	if err := tp.CheckBinary(ag.Binary, protocol.DefaultUser); err != nil {
		return err
	}
	req.Template, req.TemplateDigest = tp.Name, tp.Digest
	return nil
}

func newTemplateCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "template",
		Short: "Manage templates (OCI images that sandboxes start from)",
		Long: `Templates are OCI images: a registry reference (pulled with your Docker credentials),
an OCI image layout directory, or an OCI / docker-save archive. Each becomes a read-only
disk shared by every sandbox made from it.`,
	}
	c.AddCommand(newTemplateLsCmd(g), newTemplatePullCmd(g), newTemplateLoadCmd(g), newTemplateRmCmd(g))
	return c
}

func newTemplateLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls",
		Short: "List local templates",
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			st, err := templateStore()
			if err != nil {
				return err
			}
			list, err := st.List()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, list)
			}
			users, _ := g.templateUsers(c.Context(), false)
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIMAGE\tSIZE\tADDED\tSANDBOXES\tSOURCE")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d MiB\t%s\t%s\t%s\n", t.Name, shortDigest(t.Digest), t.DiskSize>>20,
					ago(time.Since(t.Added)), strings.Join(users.of(t.Digest), ","), t.Source)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// storeOp runs one template store operation with progress shown, then
// prints the resulting template's name and digest.
func (g *globals) storeOp(quiet bool, op func(*template.Store, template.Progress) (*template.Template, error)) error {
	st, err := templateStore()
	if err != nil {
		return err
	}
	pr := g.templateProgress(quiet)
	t, err := op(st, pr)
	pr.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "%s %s\n", t.Name, shortDigest(t.Digest))
	return nil
}

func newTemplatePullCmd(g *globals) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "pull REFERENCE",
		Short: "Pull an image from a registry (again) and make it a template",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return g.storeOp(quiet, func(st *template.Store, pr template.Progress) (*template.Template, error) {
				return st.Pull(c.Context(), args[0], template.ResolveOptions{Progress: pr})
			})
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show progress")
	return c
}

func newTemplateLoadCmd(g *globals) *cobra.Command {
	var quiet bool
	var name string
	c := &cobra.Command{
		Use:   "load PATH",
		Short: "Make a template of an OCI image layout directory or an OCI / docker-save archive",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return g.storeOp(quiet, func(st *template.Store, pr template.Progress) (*template.Template, error) {
				return st.Load(c.Context(), args[0], name, pr)
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "template name (default: the image's tag, or the file name)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show progress")
	return c
}

// usersIndex maps image digests to the sandboxes using them.
type usersIndex struct {
	byDigest map[string][]string
	unknown  []string // sandboxes whose template is no longer named in the store
}

func (u usersIndex) of(digest string) []string { return u.byDigest[digest] }

// inUse is conservative: a sandbox whose template image cannot be told
// keeps every image alive.
func (u usersIndex) inUse(digest string) []string {
	if len(u.unknown) > 0 {
		return append(append([]string{}, u.byDigest[digest]...), u.unknown...)
	}
	return u.byDigest[digest]
}

// templateUsers asks the daemon which sandboxes (running or not) use which
// image. rm needs the answer (autostart); ls does without.
func (g *globals) templateUsers(ctx context.Context, autostart bool) (usersIndex, error) {
	u := usersIndex{byDigest: map[string][]string{}}
	cl, err := g.connect(ctx, autostart)
	if err != nil {
		return u, err
	}
	list, err := cl.List(ctx)
	if err != nil {
		return u, err
	}
	st, err := templateStore()
	if err != nil {
		return u, err
	}
	for _, s := range list {
		if s.TemplateDigest != "" {
			u.byDigest[s.TemplateDigest] = append(u.byDigest[s.TemplateDigest], s.Name)
			continue
		}
		if s.Template == "" || s.Template == agents.BaseTemplate {
			continue
		}
		// An older daemon: go by the name.
		if t, err := st.Get(s.Template); err == nil {
			u.byDigest[t.Digest] = append(u.byDigest[t.Digest], s.Name)
		} else {
			u.unknown = append(u.unknown, s.Name)
		}
	}
	return u, nil
}

func newTemplateRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove templates (refused while a sandbox uses one, unless -f)",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			st, err := templateStore()
			if err != nil {
				return err
			}
			users, err := g.templateUsers(c.Context(), true)
			if err != nil {
				return fmt.Errorf("cannot tell which sandboxes use templates, so nothing was removed: %w", err)
			}
			// All or nothing, as `moat rm`: every name must exist and be
			// removable before any is removed.
			for _, n := range args {
				t, err := st.Get(n)
				if err != nil {
					return fmt.Errorf("%w; nothing was removed", err)
				}
				if u := users.inUse(t.Digest); len(u) > 0 && !force {
					return fmt.Errorf("template %s is used by sandbox %s; remove %s first, or pass -f to drop the name (the disk stays until they are removed); nothing was removed", n, strings.Join(u, ", "), map[bool]string{true: "them", false: "it"}[len(u) > 1])
				}
			}
			for _, n := range args {
				if err := st.Remove(c.Context(), n, force, users.inUse); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, n)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove the name even while sandboxes use it (their disk stays until they are removed)")
	return c
}

func newSaveCmd(g *globals) *cobra.Command {
	var out string
	var quiet bool
	c := &cobra.Command{
		Use:   "save NAME TAG [-o FILE.tar]",
		Short: "Make a template of a sandbox's current filesystem",
		Long: `Save sandbox NAME's filesystem (its template plus everything changed in it; not the
workspaces) as the local template TAG. With -o, also write it as an archive that
` + "`moat template load`" + ` and ` + "`docker load`" + ` read. The sandbox must be running.`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			// Everything that can be checked before a minutes-long save is.
			if args[1] == agents.BaseTemplate {
				return usageError(c, "%q is the bare guest's reserved name; pick another tag", args[1])
			}
			if _, err := template.ParseTag(args[1]); err != nil {
				return err
			}
			if out != "" {
				if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
					return fmt.Errorf("-o %s: the folder %s does not exist; create it or pick another path", out, filepath.Dir(out))
				}
			}
			cl, err := g.connect(ctx, true)
			if err != nil {
				return err
			}
			s, err := cl.Get(ctx, args[0])
			if err != nil {
				if errors.Is(err, sandbox.ErrNotFound) {
					return fmt.Errorf("no sandbox named %q (see `moat ls`)", args[0])
				}
				return err
			}
			if s.Status != api.StatusRunning {
				return fmt.Errorf("sandbox %s is %s; start it first (`moat run %s` or `moat run -d %s`)", s.Name, s.Status, s.Name, s.Name)
			}
			st, err := templateStore()
			if err != nil {
				return err
			}
			var base *template.Template
			if s.Template != "" && s.Template != agents.BaseTemplate {
				base, _ = st.Get(s.Template)
			}
			conn, err := cl.Exec(ctx, s.Name, api.ExecRequest{Argv: []string{"/bin/sh", "-c", template.SnapshotScript}, User: "root"})
			if err != nil {
				return err
			}
			sess, err := api.NewSession(conn)
			if err != nil {
				return err
			}
			defer sess.Close()
			pr, pw := io.Pipe()
			var stderr strings.Builder
			done := make(chan error, 1)
			go func() {
				status, err := sess.Wait(pw, &stderr)
				if err == nil && status.Code != 0 {
					err = fmt.Errorf("snapshot of %s failed (exit %d): %s", s.Name, status.Code, strings.TrimSpace(stderr.String()))
				}
				pw.CloseWithError(err)
				done <- err
			}()
			prog := g.templateProgress(quiet)
			t, err := st.Save(ctx, pr, args[1], template.SaveOptions{Base: base, Sandbox: s.Name, Output: out, Progress: prog})
			prog.Wait()
			pr.Close()
			if werr := <-done; werr != nil && err == nil {
				err = werr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s %s\n", t.Name, shortDigest(t.Digest))
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "also write the template as an archive (docker-save format)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show progress")
	return c
}

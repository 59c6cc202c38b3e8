//go:build linux

// Package passwd resolves exec users from a root filesystem's /etc/passwd and
// /etc/group (no libc, no NSS), computes the default environment of a
// process, and makes sure the sandbox's default user exists.
package passwd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// User is one resolved account.
type User struct {
	Name   string
	UID    uint32
	GID    uint32
	Home   string
	Shell  string
	Groups []uint32 // supplementary groups from /etc/group (primary excluded)
}

// Entry is one /etc/passwd line.
type Entry struct {
	Name  string
	UID   uint32
	GID   uint32
	Home  string
	Shell string
}

// Group is one /etc/group line.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// ParsePasswd reads passwd(5) lines; malformed lines are skipped.
func ParsePasswd(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if f[0] == "" || err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Entry{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5], Shell: f[6]})
	}
	return out, sc.Err()
}

// ParseGroup reads group(5) lines; malformed lines are skipped.
func ParseGroup(r io.Reader) ([]Group, error) {
	var out []Group
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if f[0] == "" || err != nil {
			continue
		}
		g := Group{Name: f[0], GID: uint32(gid)}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.Members = append(g.Members, m)
			}
		}
		out = append(out, g)
	}
	return out, sc.Err()
}

// Lookup resolves spec (a user name or a numeric uid) against root's
// /etc/passwd and /etc/group. A numeric uid with no passwd entry resolves to
// that uid with gid = uid, home "/" and shell /bin/sh (like container
// runtimes do); an unknown name is an error.
func Lookup(root, spec string) (User, error) {
	pf, err := os.Open(filepath.Join(root, "etc/passwd"))
	var entries []Entry
	if err == nil {
		entries, err = ParsePasswd(pf)
		pf.Close()
		if err != nil {
			return User{}, fmt.Errorf("read /etc/passwd: %w", err)
		}
	} else if !os.IsNotExist(err) {
		return User{}, err
	}
	var groups []Group
	if gf, err := os.Open(filepath.Join(root, "etc/group")); err == nil {
		groups, _ = ParseGroup(gf)
		gf.Close()
	}
	return Resolve(entries, groups, spec)
}

// Resolve is Lookup on already parsed files.
func Resolve(entries []Entry, groups []Group, spec string) (User, error) {
	var e *Entry
	for i := range entries {
		if entries[i].Name == spec {
			e = &entries[i]
			break
		}
	}
	uid, numErr := strconv.ParseUint(spec, 10, 32)
	if e == nil && numErr == nil {
		for i := range entries {
			if entries[i].UID == uint32(uid) {
				e = &entries[i]
				break
			}
		}
	}
	var u User
	switch {
	case e != nil:
		u = User{Name: e.Name, UID: e.UID, GID: e.GID, Home: e.Home, Shell: e.Shell}
	case numErr == nil:
		u = User{Name: spec, UID: uint32(uid), GID: uint32(uid), Home: "/", Shell: "/bin/sh"}
	default:
		return User{}, fmt.Errorf("user %s not found in /etc/passwd", spec)
	}
	if u.Home == "" {
		u.Home = "/"
	}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	for _, g := range groups {
		if g.GID == u.GID {
			continue
		}
		for _, m := range g.Members {
			if m == u.Name {
				u.Groups = append(u.Groups, g.GID)
				break
			}
		}
	}
	return u, nil
}

// DefaultPath is PATH when the request does not set it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Env returns env (KEY=VALUE entries) with HOME, USER, LOGNAME, SHELL, PATH
// and, for a tty, TERM added where env does not set them. Later duplicates in
// env win, as with execve callers that append.
func Env(env []string, u User, tty bool) []string {
	have := map[string]bool{}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok {
			have[k] = true
		}
	}
	out := make([]string, 0, len(env)+6)
	add := func(k, v string) {
		if !have[k] {
			out = append(out, k+"="+v)
		}
	}
	add("HOME", u.Home)
	add("USER", u.Name)
	add("LOGNAME", u.Name)
	add("SHELL", u.Shell)
	add("PATH", DefaultPath)
	if tty {
		add("TERM", "xterm-256color")
	}
	return append(out, env...)
}

// Getenv returns the last value of key in env.
func Getenv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// EnsureUser makes sure root has a user name with uid (and a group of the
// same name and gid) and a home directory /home/<name> owned by it. It appends
// to /etc/passwd and /etc/group only when the name is missing; an existing
// entry is left alone. It reports whether anything was added.
func EnsureUser(root, name string, uid uint32) (bool, error) {
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return false, err
	}
	pwPath := filepath.Join(etc, "passwd")
	pw, _ := os.ReadFile(pwPath)
	entries, _ := ParsePasswd(bytes.NewReader(pw))
	home := "/home/" + name
	added := false
	found := false
	for _, e := range entries {
		if e.Name == name {
			found = true
			home = e.Home
		}
	}
	if !found {
		shell := "/bin/sh"
		if _, err := os.Stat(filepath.Join(root, "bin/bash")); err == nil {
			shell = "/bin/bash"
		}
		line := fmt.Sprintf("%s:x:%d:%d:%s:%s:%s\n", name, uid, uid, name, home, shell)
		if err := appendLine(pwPath, pw, line, 0o644); err != nil {
			return false, err
		}
		added = true
		// Keep /etc/shadow consistent when it exists (locked password).
		shPath := filepath.Join(etc, "shadow")
		if sh, err := os.ReadFile(shPath); err == nil && !hasName(sh, name) {
			_ = appendLine(shPath, sh, name+":!:19000:0:99999:7:::\n", 0o640)
		}
	}
	grPath := filepath.Join(etc, "group")
	gr, _ := os.ReadFile(grPath)
	if !hasName(gr, name) {
		if err := appendLine(grPath, gr, fmt.Sprintf("%s:x:%d:\n", name, uid), 0o644); err != nil {
			return added, err
		}
		added = true
	}
	if home != "" && home != "/" {
		h := filepath.Join(root, home)
		if _, err := os.Stat(h); os.IsNotExist(err) {
			if err := os.MkdirAll(h, 0o755); err != nil {
				return added, err
			}
			if err := os.Chown(h, int(uid), int(uid)); err != nil {
				return added, err
			}
			added = true
		}
	}
	return added, nil
}

func hasName(file []byte, name string) bool {
	for _, line := range strings.Split(string(file), "\n") {
		if n, _, ok := strings.Cut(line, ":"); ok && n == name {
			return true
		}
	}
	return false
}

func appendLine(path string, old []byte, line string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SetUID gives user name the uid uid in root's /etc/passwd and hands over
// what it owned in its home directory (files owned by its old uid). It is
// how the guest's agent user takes the host user's uid, so that workspace
// files, which the guest sees with their host owners, are the agent's.
// It refuses when another user already has uid. changed is false when the
// user already had it.
func SetUID(root, name string, uid uint32) (old uint32, changed bool, err error) {
	pwPath := filepath.Join(root, "etc", "passwd")
	pw, err := os.ReadFile(pwPath)
	if err != nil {
		return 0, false, err
	}
	entries, _ := ParsePasswd(bytes.NewReader(pw))
	var me *Entry
	for i := range entries {
		e := &entries[i]
		if e.Name == name {
			me = e
		}
	}
	if me == nil {
		return 0, false, fmt.Errorf("no user %q in /etc/passwd", name)
	}
	if me.UID == uid {
		return uid, false, nil
	}
	for _, e := range entries {
		if e.UID == uid && e.Name != name {
			return me.UID, false, fmt.Errorf("uid %d already belongs to user %q", uid, e.Name)
		}
	}
	old = me.UID
	lines := strings.Split(string(pw), "\n")
	for i, line := range lines {
		f := strings.Split(line, ":")
		if len(f) >= 7 && f[0] == name {
			f[2] = strconv.FormatUint(uint64(uid), 10)
			lines[i] = strings.Join(f, ":")
		}
	}
	tmp := pwPath + ".moat-tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		return old, false, err
	}
	if err := os.Rename(tmp, pwPath); err != nil {
		return old, false, err
	}
	if me.Home != "" && me.Home != "/" {
		home := filepath.Join(root, me.Home)
		filepath.Walk(home, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if fileUID(info) == old {
				os.Lchown(p, int(uid), -1)
			}
			return nil
		})
	}
	return old, true, nil
}

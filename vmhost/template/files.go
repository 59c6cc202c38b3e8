package template

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
)

// The file index is a listing of the flattened filesystem (type, mode,
// owner, link target; no content) kept beside the base disk, so a template
// can be inspected (is the agent's binary there?) without mounting it.

// fileEntry is one line of the index.
type fileEntry struct {
	Name string `json:"n"`
	Type byte   `json:"t"` // tar type flag
	Mode int64  `json:"m"`
	UID  int    `json:"u"`
	GID  int    `json:"g"`
	Link string `json:"l,omitempty"` // symlink target
}

func writeFileIndex(p string, entries []*node) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	bw := bufio.NewWriter(zw)
	enc := json.NewEncoder(bw)
	for _, n := range entries {
		e := fileEntry{Name: n.name, Type: n.hdr.Typeflag, Mode: n.hdr.Mode, UID: n.hdr.Uid, GID: n.hdr.Gid}
		if n.hdr.Typeflag == tar.TypeSymlink {
			e.Link = n.hdr.Linkname
		}
		if err := enc.Encode(e); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileIndex is a loaded index.
type fileIndex map[string]fileEntry

func readFileIndex(p string) (fileIndex, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("file index %s: %w", p, err)
	}
	idx := fileIndex{}
	dec := json.NewDecoder(bufio.NewReader(zr))
	for {
		var e fileEntry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("file index %s: %w", p, err)
		}
		idx[e.Name] = e
	}
	idx[""] = fileEntry{Type: tar.TypeDir, Mode: 0o755}
	return idx, nil
}

// resolve follows symlinks (inside the image, as the guest would) and
// returns the final entry of an absolute path.
func (idx fileIndex) resolve(p string) (fileEntry, string, bool) {
	hops := 0
	rest := split(cleanName(p))
	cur := ""
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		next := path.Join(cur, c)
		if c == ".." {
			next = cleanName(path.Dir("/" + cur))
		}
		if c == "." {
			continue
		}
		e, ok := idx[next]
		if !ok {
			return fileEntry{}, "", false
		}
		if e.Type == tar.TypeSymlink {
			hops++
			if hops > 40 {
				return fileEntry{}, "", false
			}
			target := e.Link
			if !strings.HasPrefix(target, "/") {
				target = path.Join("/"+cur, target)
			}
			rest = append(split(cleanName(target)), rest...)
			cur = ""
			continue
		}
		if len(rest) > 0 && e.Type != tar.TypeDir {
			return fileEntry{}, "", false
		}
		cur = next
	}
	e, ok := idx[cur]
	return e, "/" + cur, ok
}

// account is a user as the image's /etc/passwd and /etc/group define it.
type account struct {
	uid, gid int
	groups   map[int]bool
}

// lookupAccount finds user (a name or a numeric uid) in passwd/group text.
// A missing "agent" gets the uid and gid the guest would give it (1000).
func lookupAccount(passwd, group, user string) account {
	a := account{uid: -1, gid: -1, groups: map[int]bool{}}
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		if f[0] == user || f[2] == user {
			a.uid, _ = strconv.Atoi(f[2])
			a.gid, _ = strconv.Atoi(f[3])
			user = f[0]
			break
		}
	}
	if a.uid < 0 {
		if n, err := strconv.Atoi(user); err == nil {
			a.uid, a.gid = n, n
		} else {
			a.uid, a.gid = 1000, 1000 // the guest creates the default user with uid 1000
		}
	}
	for _, line := range strings.Split(group, "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if strings.TrimSpace(m) == user {
				if g, err := strconv.Atoi(f[2]); err == nil {
					a.groups[g] = true
				}
			}
		}
	}
	return a
}

func (a account) canExec(e fileEntry) bool {
	switch {
	case a.uid == 0:
		return e.Mode&0o111 != 0
	case e.UID == a.uid:
		return e.Mode&0o100 != 0
	case e.GID == a.gid || a.groups[e.GID]:
		return e.Mode&0o010 != 0
	default:
		return e.Mode&0o001 != 0
	}
}

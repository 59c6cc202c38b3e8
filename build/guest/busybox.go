package main

import (
	"bytes"
	"fmt"
	"sort"
)

// busyboxApplets reads the applet names compiled into a busybox binary of
// any architecture, without running it: busybox keeps them as one sorted,
// NUL-separated string (applet_names[], starting with the "[" and "[["
// applets of test) that ends with an empty name. The result equals
// `busybox --list` (checked by a test on the build machine's busybox).
func busyboxApplets(bin []byte) ([]string, error) {
	i := bytes.Index(bin, []byte("[\x00[[\x00"))
	if i < 0 {
		return nil, fmt.Errorf("busybox: applet name table not found")
	}
	var names []string
	for j := i; j < len(bin); {
		k := bytes.IndexByte(bin[j:], 0)
		if k <= 0 {
			break
		}
		name := string(bin[j : j+k])
		if len(names) > 0 && name <= names[len(names)-1] {
			break // past the (sorted) table
		}
		for _, c := range name {
			if c <= ' ' || c > '~' || c == '/' {
				return nil, fmt.Errorf("busybox: odd applet name %q", name)
			}
		}
		names = append(names, name)
		j += k + 1
	}
	if len(names) < 50 {
		return nil, fmt.Errorf("busybox: only %d applets found", len(names))
	}
	if !sort.StringsAreSorted(names) {
		return nil, fmt.Errorf("busybox: applet table not sorted")
	}
	return names, nil
}

// baseTree is the tiny test base disk: busybox with its applets linked into
// /bin, /sbin and /usr/bin, root and an "agent" user (1000:1000), and the
// usual empty mount points.
func baseTree(busybox string, applets []string) *tree {
	t := newTree()
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin", "etc",
		"home", "proc", "sys", "dev", "run", "mnt", "lib", "lib/modules", "var", "var/tmp", "opt"} {
		t.dir(d, 0o755, 0, 0)
	}
	t.dir("root", 0o700, 0, 0)
	t.dir("tmp", 0o1777, 0, 0)
	t.dir("var/tmp", 0o1777, 0, 0)
	t.dir("home/agent", 0o755, 1000, 1000)
	t.fileFrom("bin/busybox", 0o755, busybox)
	for _, a := range applets {
		if a == "busybox" {
			continue
		}
		for _, d := range []string{"bin", "sbin", "usr/bin"} {
			t.symlink(d+"/"+a, "/bin/busybox")
		}
	}
	t.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n"))
	t.file("etc/group", 0o644, []byte("root:x:0:\nagent:x:1000:\n"))
	t.file("etc/shadow", 0o640, []byte("root:*:0:0:99999:7:::\nagent:*:0:0:99999:7:::\n"))
	t.file("etc/hostname", 0o644, nil)
	t.file("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n"))
	t.file("etc/os-release", 0o644, []byte("NAME=\"moat busybox test base\"\nID=moat-busybox\n"))
	return t
}

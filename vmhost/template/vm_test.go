//go:build linux

package template_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatsandbox/moat/vmhost/agentclient"
	"github.com/moatsandbox/moat/vmhost/assets"
	"github.com/moatsandbox/moat/vmhost/driver"
	"github.com/moatsandbox/moat/vmhost/driver/drivertest"
	"github.com/moatsandbox/moat/vmhost/driver/qemu"
	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/template"
	"github.com/moatsandbox/moat/vmhost/vm"
)

// sandbox is the host side of one test sandbox: a base disk from the store
// and its own writable disk.
type sandbox struct {
	t     *testing.T
	d     driver.Driver
	a     *assets.Set
	name  string
	dir   string
	base  string
	data  string
	ws    string
	boots int
}

// vmEnv boots real VMs or skips (fails under MOAT_REQUIRE_VM=1).
func vmEnv(t *testing.T) (driver.Driver, *assets.Set, string) {
	if testing.Short() {
		t.Skip("boots real VMs")
	}
	d := qemu.New()
	if err := d.Available(); err != nil {
		if os.Getenv(drivertest.RequireEnv) == "1" {
			t.Fatalf("%s=1 but QEMU is not usable: %v", drivertest.RequireEnv, err)
		}
		t.Skipf("QEMU not usable: %v", err)
	}
	a := drivertest.Assets(t)
	dir, err := os.MkdirTemp("", "moat-tpl-") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir, _ = filepath.EvalSymlinks(dir)
	return d, a, dir
}

func newSandbox(t *testing.T, d driver.Driver, a *assets.Set, dir, name string, tp *template.Template) *sandbox {
	sb := &sandbox{t: t, d: d, a: a, name: name, dir: filepath.Join(dir, name), base: tp.Disk}
	sb.data = filepath.Join(sb.dir, "data.img")
	sb.ws = filepath.Join(dir, "ws-"+name)
	if err := os.MkdirAll(sb.ws, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chown(sb.ws, protocol.DefaultUID, protocol.DefaultUID)
	return sb
}

func (sb *sandbox) boot() *vm.VM {
	sb.t.Helper()
	sb.boots++
	c, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, err := vm.Boot(c, sb.d, vm.Options{
		Name:       sb.name,
		Assets:     sb.a,
		BaseDisk:   sb.base,
		DataDisk:   sb.data,
		DataSize:   1 << 30,
		MemoryMiB:  1024,
		Workspaces: []vm.Workspace{{HostPath: sb.ws}},
		RunDir:     filepath.Join(sb.dir, "run"),
		ConsoleLog: filepath.Join(sb.dir, fmt.Sprintf("console-%d.log", sb.boots)),
	})
	if err != nil {
		sb.t.Fatalf("boot %s: %v", sb.name, err)
	}
	sb.t.Logf("%s boot %d: ready in %v", sb.name, sb.boots, v.BootTime.Round(time.Millisecond))
	sb.t.Cleanup(func() {
		select {
		case <-v.Machine.Done():
		default:
			v.Machine.Kill()
			<-v.Machine.Done()
		}
	})
	return v
}

func stop(t *testing.T, v *vm.VM) {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := v.Stop(c); err != nil {
		t.Fatal(err)
	}
}

// sh runs a script; Env and Dir as a sandbox exec would pass them from the
// template's config.
func sh(t *testing.T, v *vm.VM, tp *template.Template, user, dir, script string, stdout io.Writer) (string, protocol.ExitStatus) {
	t.Helper()
	out, errs, st, err := run(v, tp, user, dir, script, stdout)
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	if st.Code != 0 {
		t.Fatalf("%q as %q: exit %d: %s %s", script, user, st.Code, errs, st.Error)
	}
	return out, st
}

// run is sh without failing the test (safe off the test goroutine).
func run(v *vm.VM, tp *template.Template, user, dir, script string, stdout io.Writer) (string, string, protocol.ExitStatus, error) {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	var w io.Writer = &out
	if stdout != nil {
		w = stdout
	}
	st, err := v.Agent.Run(c, protocol.ExecRequest{Argv: []string{"/bin/sh", "-c", script}, User: user, Dir: dir, Env: tp.Env},
		agentclient.Stdio{Stdout: w, Stderr: &errb})
	return out.String(), errb.String(), st, err
}

// The checks inside the guest (run as root: some files are root-only), one
// line each: script -> expected output.
var wantInGuest = []struct{ script, want string }{
	{"test -e /data/old/file-gone && echo present || echo absent", "absent"}, // whiteout
	{"cat /data/old/file-kept", "kept"},
	{"test -e /data/gone-dir && echo present || echo absent", "absent"}, // whiteout of a directory
	{"ls /data/opq | tr '\\n' ' '", "upper-c"},                          // opaque dir: lower entries hidden
	{"readlink /data/sym; cat /data/sym", "hl-a\nshared inode"},         // symlink
	{"readlink /data/abssym; head -1 /data/abssym", "/etc/passwd\nroot:x:0:0:root:/root:/bin/sh"},
	{"[ $(stat -c %i /data/hl-a) = $(stat -c %i /data/hl-b) ] && stat -c '%h %a' /data/hl-b", "2 640"}, // hard link: one inode
	{"cat /data/orig-link; cat /data/orig; [ $(stat -c %i /data/orig) != $(stat -c %i /data/orig-link) ] && echo split", "original\nreplaced\nsplit"},
	{"stat -c %a /data/tool.sh /data/suid /data/orig | tr '\\n' ' '; /data/tool.sh", "755 4755 600 tool-ran"}, // modes, exec bit
	{"test -d /data/was-file && stat -c %a /data/was-file && cat /data/was-file/child", "711\nchild"},         // dir over a file
	{"test -e /data/chardev || test -e /data/fifo || echo skipped", "skipped"},                                // device nodes skipped
	{"stat -c '%U %u' /home/agent; id -u agent", "agent 1000\n1000"},
	{"echo $MOAT_TEST; mytool", "1\nmytool"}, // image env (PATH through the /usr/local/bin symlink)
}

func TestTemplateSandboxes(t *testing.T) {
	d, a, dir := vmEnv(t)
	s := template.Open(filepath.Join(dir, "templates"))
	ref := serve(t, testImage(t, false), "test/busybox:v1")
	start := time.Now()
	tp, err := s.Resolve(ctx(t), ref, template.ResolveOptions{Progress: template.NewLineProgress(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pull + convert: %v (%d layers, disk %d KiB)", time.Since(start).Round(time.Millisecond), tp.Layers, tp.DiskSize>>10)

	sbA := newSandbox(t, d, a, dir, "sb-a", tp)
	va := sbA.boot()
	t.Run("FilesystemInGuest", func(t *testing.T) {
		for _, c := range wantInGuest {
			got, errs, st, err := run(va, tp, "root", "", c.script, nil)
			if err != nil || st.Code != 0 || strings.TrimSpace(got) != c.want {
				t.Errorf("%s\n got %q (exit %d, %v, stderr %q)\nwant %q", c.script, strings.TrimSpace(got), st.Code, err, errs, c.want)
			}
		}
	})
	// Sandbox A's own changes: in its writable disk only.
	sh(t, va, tp, "", sbA.ws, "echo made-in-a > /home/agent/from-a && pwd > /home/agent/cwd && sync", nil)
	sh(t, va, tp, "root", "", "rm /data/old/file-kept && sync", nil)

	// Save A: the snapshot streamed over exec stdout.
	t.Run("Save", func(t *testing.T) {
		pr, pw := io.Pipe()
		errc := make(chan error, 1)
		go func() {
			_, errs, st, err := run(va, tp, "root", "", template.SnapshotScript, pw)
			if err == nil && st.Code != 0 {
				err = fmt.Errorf("snapshot: exit %d: %s", st.Code, errs)
			}
			pw.CloseWithError(err)
			errc <- err
		}()
		out := filepath.Join(dir, "saved.tar")
		start := time.Now()
		saved, err := s.Save(ctx(t), pr, "saved-a:v1", template.SaveOptions{Base: tp, Sandbox: "sb-a", Output: out})
		pr.Close()
		if serr := <-errc; serr != nil {
			t.Fatal(serr)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("save: %v (disk %d KiB)", time.Since(start).Round(time.Millisecond), saved.DiskSize>>10)
		stop(t, va)

		// C from the saved template sees A's file; a template from the
		// -o archive has the same digest.
		sbC := newSandbox(t, d, a, dir, "sb-c", saved)
		vc := sbC.boot()
		if got, _ := sh(t, vc, saved, "", "", "cat /home/agent/from-a; cat /home/agent/cwd; test -e /data/old/file-kept || echo removed-stays-removed; readlink /data/sym", nil); got != "made-in-a\n"+sbA.ws+"\nremoved-stays-removed\nhl-a\n" {
			t.Errorf("sandbox from the saved template: %q", got)
		}
		if got, _ := sh(t, vc, saved, "", "", "ls /proc | grep -c '^1$'; ls -A "+sbA.ws+" | wc -l", nil); got != "1\n0\n" {
			t.Errorf("snapshot carried /proc or workspace content: %q", got)
		}
		stop(t, vc)
		s2 := template.Open(filepath.Join(dir, "templates2"))
		lt, err := s2.Load(ctx(t), out, "", nil)
		if err != nil || lt.Digest != saved.Digest {
			t.Errorf("load of the -o archive: %v %v", lt, err)
		}
	})

	// B: a second sandbox of the same template shares the cached base disk.
	tpB, err := s.Resolve(ctx(t), ref, template.ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa, _ := os.Stat(tp.Disk)
	fb, _ := os.Stat(tpB.Disk)
	if tpB.Disk != tp.Disk || !os.SameFile(fa, fb) || !fa.ModTime().Equal(fb.ModTime()) {
		t.Fatalf("second sandbox got another base disk: %s vs %s", tpB.Disk, tp.Disk)
	}
	sbB := newSandbox(t, d, a, dir, "sb-b", tpB)
	vb := sbB.boot()
	if got, _ := sh(t, vb, tpB, "", "", "test -e /home/agent/from-a && echo leaked || echo clean; cat /data/old/file-kept; echo b > /home/agent/from-b; sync", nil); got != "clean\nkept\n" {
		t.Errorf("sandbox B sees A's changes: %q", got)
	}
	stop(t, vb)

	// rm A (its writable disk and directory): B still boots and keeps its data.
	if err := os.RemoveAll(sbA.dir); err != nil {
		t.Fatal(err)
	}
	vb2 := sbB.boot()
	if got, _ := sh(t, vb2, tpB, "root", "", "cat /home/agent/from-b; cat /data/orig", nil); got != "b\nreplaced\n" {
		t.Errorf("after removing A, B: %q", got)
	}
	stop(t, vb2)
	if _, err := os.Stat(tp.Disk); err != nil {
		t.Fatalf("base disk gone: %v", err)
	}
	assertClean(t, s)
}

//go:build linux

package boot

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

func fakeSys(t *testing.T, disks map[string]string) string {
	root := t.TempDir()
	for name, serial := range disks {
		d := filepath.Join(root, "block", name)
		os.MkdirAll(d, 0o755)
		if serial != "-" {
			os.WriteFile(filepath.Join(d, "serial"), []byte(serial+"\n"), 0o644)
		}
	}
	return root
}

func TestResolveDisk(t *testing.T) {
	sys := fakeSys(t, map[string]string{"vda": "base", "vdb": "data", "vdaa": "x", "vdc": "modules", "loop0": "-"})
	for _, c := range []struct {
		d    protocol.Disk
		want string
	}{
		{protocol.Disk{Serial: "data"}, "vdb"},
		{protocol.Disk{Serial: "modules", Index: 0}, "vdc"},
		{protocol.Disk{Index: 3}, "vdaa"},
		{protocol.Disk{Index: 0}, "vda"},
	} {
		got, err := ResolveDisk(sys, c.d)
		if err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c.d, got, err, c.want)
		}
	}
	if _, err := ResolveDisk(sys, protocol.Disk{Serial: "nope"}); err == nil {
		t.Error("unknown serial resolved")
	}
	// No serials exposed (vz): fall back to the index.
	sys = fakeSys(t, map[string]string{"vda": "", "vdb": ""})
	if got, err := ResolveDisk(sys, protocol.Disk{Serial: "data", Index: 1}); err != nil || got != "vdb" {
		t.Errorf("index fallback: %q %v", got, err)
	}
	if _, err := ResolveDisk(sys, protocol.Disk{Index: 2}); err == nil {
		t.Error("index out of range resolved")
	}
}

func TestHasExtFS(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	b := make([]byte, 4096)
	os.WriteFile(p, b, 0o644)
	if ok, err := HasExtFS(p); ok || err != nil {
		t.Fatalf("blank: %v %v", ok, err)
	}
	if blank, err := IsBlank(p); !blank || err != nil {
		t.Fatalf("IsBlank(zeros) = %v %v", blank, err)
	}
	b[1080], b[1081] = 0x53, 0xEF
	os.WriteFile(p, b, 0o644)
	if ok, err := HasExtFS(p); !ok || err != nil {
		t.Fatalf("ext: %v %v", ok, err)
	}
	if blank, _ := IsBlank(p); blank {
		t.Fatal("IsBlank(ext) = true")
	}
}

func TestFindPort(t *testing.T) {
	sys := t.TempDir()
	for port, name := range map[string]string{"vport1p1": "other", "vport2p1": protocol.ChannelName} {
		d := filepath.Join(sys, "class/virtio-ports", port)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "name"), []byte(name+"\n"), 0o644)
	}
	if dev, err := FindPort(sys, protocol.ChannelName); err != nil || dev != "/dev/vport2p1" {
		t.Fatalf("%q %v", dev, err)
	}
	if _, err := FindPort(sys, "missing"); err == nil {
		t.Fatal("missing port found")
	}
}

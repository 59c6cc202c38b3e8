//go:build linux

package netcfg

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// TestInNetns re-runs itself in a fresh network namespace (unshare -n, as
// root) and configures lo there like a guest NIC: address, up, default route.
func TestInNetns(t *testing.T) {
	if os.Getenv("MOAT_NETCFG_IN_NETNS") == "1" {
		inNetns(t)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run=^TestInNetns$", "-test.v")
	cmd.Env = append(os.Environ(), "MOAT_NETCFG_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "--- PASS: TestInNetns") {
		t.Fatal("inner test did not pass")
	}
}

func inNetns(t *testing.T) {
	if err := Loopback(); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	err := Configure(root, &protocol.Network{Interface: "lo", Address: "10.9.0.2/24", Gateway: "10.9.0.1", DNS: []string{"10.9.0.3", "1.1.1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := os.ReadFile("/proc/net/route")
	// Default route: destination 00000000, gateway 10.9.0.1 little-endian.
	if !strings.Contains(string(routes), "lo\t00000000\t0100090A") {
		t.Fatalf("no default route:\n%s", routes)
	}
	if out, err := exec.Command("ip", "-4", "addr", "show", "lo").CombinedOutput(); err == nil && !strings.Contains(string(out), "10.9.0.2/24") {
		t.Fatalf("address not set:\n%s", out)
	}
	// A second call is idempotent.
	if err := AddDefaultRoute("lo", netip.MustParseAddr("10.9.0.1")); err != nil {
		t.Fatal(err)
	}
	rc, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
	if string(rc) != "nameserver 10.9.0.3\nnameserver 1.1.1.1\n" {
		t.Fatalf("resolv.conf %q", rc)
	}
}

func TestWriteHosts(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1\tlocalhost\n10.0.0.5 db\n"), 0o644)
	for i := 0; i < 2; i++ {
		if err := WriteHosts(root, "box"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/hosts"))
	if string(b) != "127.0.0.1\tlocalhost\n10.0.0.5 db\n127.0.1.1\tbox\t# moat\n" {
		t.Fatalf("hosts %q", b)
	}
}

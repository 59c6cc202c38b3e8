package modules

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testdata/modules.dep and modules.builtin are real lines from Debian's
// linux-image-6.1.0-57-amd64 (depmod output).
func load(t *testing.T) (*Deps, map[string]bool) {
	t.Helper()
	d, b, err := ReadTree("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return d, b
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"virtio-rng":    "virtio_rng",
		"virtio_rng":    "virtio_rng",
		"virtio-rng.ko": "virtio_rng",
		"kernel/drivers/char/hw_random/virtio-rng.ko.xz": "virtio_rng",
		"kernel/fs/9p/9p.ko.zst":                         "9p",
		" crc32c-intel ":                                 "crc32c_intel",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOrderVirtioPCI(t *testing.T) {
	d, b := load(t)
	got, err := d.Order([]string{"virtio_pci"}, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
		"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
}

func TestOrderFullSet(t *testing.T) {
	d, b := load(t)
	wanted := []string{"virtio_blk", "virtio_pci", "virtio_console", "9p", "9pnet_virtio", "virtiofs",
		"virtio_net", "overlay", "ext4", "vmw_vsock_virtio_transport", "virtio-rng", "crc32", "unix"}
	got, err := d.Order(wanted, b)
	if err != nil {
		t.Fatal(err)
	}
	// Every file once, after all of its dependencies.
	seen := map[string]bool{}
	for i, f := range got {
		if seen[f] {
			t.Fatalf("%s twice", f)
		}
		seen[f] = true
		for _, dep := range d.DepsOf(f) {
			if j := index(got, dep); j < 0 || j > i {
				t.Errorf("%s (at %d) needs %s (at %d)", f, i, dep, j)
			}
		}
	}
	for _, w := range []string{"kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko", "kernel/lib/crc16.ko",
		"kernel/net/9p/9pnet.ko", "kernel/fs/netfs/netfs.ko", "kernel/net/core/failover.ko",
		"kernel/drivers/char/hw_random/virtio-rng.ko", "kernel/net/vmw_vsock/vsock.ko"} {
		if !seen[w] {
			t.Errorf("closure lacks %s", w)
		}
	}
	if seen["kernel/drivers/scsi/scsi_mod.ko"] {
		t.Error("closure has scsi_mod, which nothing wanted needs")
	}
	// Built-in names are skipped, not errors.
	for _, f := range got {
		if strings.Contains(f, "crc32.ko") || strings.Contains(f, "unix") {
			t.Errorf("built-in module in order: %s", f)
		}
	}
	// Deterministic.
	again, _ := d.Order(wanted, b)
	if !reflect.DeepEqual(got, again) {
		t.Fatal("order differs between runs")
	}
}

func TestOrderErrors(t *testing.T) {
	d, b := load(t)
	if _, err := d.Order([]string{"no_such_module"}, b); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Errorf("unknown module: err = %v", err)
	}
	cyc, err := ParseDep(strings.NewReader("a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cyc.Order([]string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
	dangling, _ := ParseDep(strings.NewReader("a.ko: gone.ko\n"))
	if _, err := dangling.Order([]string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "gone.ko") {
		t.Errorf("dangling: err = %v", err)
	}
	if _, err := ParseDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestWriteDepFiltered(t *testing.T) {
	d, b := load(t)
	files, err := d.Order([]string{"virtio_blk"}, b)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.WriteDep(&buf, files); err != nil {
		t.Fatal(err)
	}
	want := "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio_ring.ko:\n" +
		"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	// Round trip: the filtered file orders the same.
	d2, err := ParseDep(&buf)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d2.Order([]string{"virtio-blk"}, nil)
	if err != nil || !reflect.DeepEqual(again, files) {
		t.Fatalf("filtered order %q, %v; want %q", again, err, files)
	}
	if err := d.WriteDep(&buf, []string{"kernel/drivers/virtio/virtio.ko"}); err == nil {
		t.Error("WriteDep accepted a file without its dependency")
	}
}

func TestResolveAndLoad(t *testing.T) {
	root := t.TempDir()
	dep, _ := os.ReadFile("testdata/modules.dep")
	os.WriteFile(filepath.Join(root, "modules.dep"), dep, 0o644)
	var loaded []string
	err := Load(root, []string{"9pnet_virtio"}, func(p string) error {
		loaded = append(loaded, strings.TrimPrefix(p, root+string(filepath.Separator)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
		"kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko"}
	for i := range want {
		want[i] = filepath.FromSlash(want[i])
	}
	if !reflect.DeepEqual(loaded, want) {
		t.Fatalf("loaded %q, want %q", loaded, want)
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader("# comment\nvirtio_pci\n\n  ext4 # root\n9p\n"))
	if err != nil || !reflect.DeepEqual(got, []string{"virtio_pci", "ext4", "9p"}) {
		t.Fatalf("got %q, %v", got, err)
	}
}

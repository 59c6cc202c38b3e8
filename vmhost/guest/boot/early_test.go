//go:build linux

package boot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadModulesOrder(t *testing.T) {
	root := t.TempDir()
	mdir := filepath.Join(root, "lib/modules/6.1.0-test")
	os.MkdirAll(mdir, 0o755)
	os.MkdirAll(filepath.Join(root, "etc/moat"), 0o755)
	dep := strings.Join([]string{
		"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko",
		"kernel/fs/jbd2/jbd2.ko:",
		"kernel/fs/mbcache.ko:",
		"kernel/lib/crc16.ko:",
		"kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/virtio/virtio_ring.ko:",
		"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/char/broken.ko:",
		"",
	}, "\n")
	os.WriteFile(filepath.Join(mdir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(mdir, "modules.builtin"), []byte("kernel/fs/overlayfs/overlay.ko\n"), 0o644)
	os.WriteFile(filepath.Join(root, ModulesList), []byte("ext4\nvirtio_pci\noverlay\nbroken\n"), 0o644)

	var mu sync.Mutex
	loaded := map[string]bool{}
	var order []string
	loadModule = func(p string) error {
		name := filepath.Base(p)
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		order = append(order, name)
		if name == "broken.ko" {
			return errors.New("no such device")
		}
		loaded[name] = true
		return nil
	}
	defer func() { loadModule = finitModule }()
	var logBuf bytes.Buffer
	n, err := loadModules(root, "6.1.0-test", NewLogger(&logBuf))
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("loaded %d (%v)", n, order)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
	}
	for _, c := range [][2]string{
		{"jbd2.ko", "ext4.ko"}, {"mbcache.ko", "ext4.ko"}, {"crc16.ko", "ext4.ko"},
		{"virtio_ring.ko", "virtio.ko"}, {"virtio.ko", "virtio_pci.ko"},
	} {
		if pos[c[0]] > pos[c[1]] {
			t.Errorf("%s loaded after %s: %v", c[0], c[1], order)
		}
	}
	if !strings.Contains(logBuf.String(), "broken.ko: no such device") {
		t.Errorf("log: %q", logBuf.String())
	}
}

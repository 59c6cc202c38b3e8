package hostmem

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TotalMiB agrees with /proc/meminfo's MemTotal.
func TestTotalMatchesMeminfo(t *testing.T) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo on this OS")
	}
	var kib int
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, _ = strconv.Atoi(f[1])
		}
	}
	got := TotalMiB()
	if kib == 0 || got != kib/1024 {
		t.Fatalf("TotalMiB %d, MemTotal %d KiB", got, kib)
	}
}

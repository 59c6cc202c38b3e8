//go:build !linux && !darwin

package hostmem

// Windows: not measured yet (GlobalMemoryStatusEx); nothing is checked.
func totalMiB() int { return 0 }

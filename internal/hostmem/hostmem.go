// Package hostmem reports the host's physical memory, so a sandbox asking
// for more than the machine has is refused when it is created rather than
// failing at boot with the hypervisor's error.
package hostmem

// TotalMiB is the host's physical memory in MiB, or 0 when unknown (then
// callers check nothing).
func TotalMiB() int { return totalMiB() }

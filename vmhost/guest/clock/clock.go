//go:build linux

// Package clock measures guest boot milestones on CLOCK_BOOTTIME, i.e. in
// milliseconds since the kernel started, as protocol.Timings expects.
package clock

import "golang.org/x/sys/unix"

// BootMS returns milliseconds since the kernel started (0 if the clock is
// unavailable).
func BootMS() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
}

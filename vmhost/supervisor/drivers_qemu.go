//go:build linux || darwin

package supervisor

// The QEMU driver (Linux; macOS until vz lands) registers itself.
import _ "github.com/moatsandbox/moat/vmhost/driver/qemu"

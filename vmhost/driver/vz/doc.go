// Package vz is the macOS driver: Apple's Virtualization.framework through
// github.com/Code-Hex/vz/v3. The VM runs inside the calling process (the
// sandbox supervisor), which is also the only process that can reach the
// guest's vsock, so the supervisor relays the agent channel.
//
// Verification status: vz_darwin.go is type-checked in CI (gopls, GOOS=darwin)
// but has never been run; see docs/platforms.md.
//
// Build with cgo on macOS; the no_vz tag leaves the driver out.
package vz

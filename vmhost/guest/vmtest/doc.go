//go:build linux

// Package vmtest holds the guest agent's end-to-end test: it boots the real
// guest assets (kernel, initramfs with moat-guest as /init, modules and base
// disks) in QEMU with TCG and drives the agent over its virtio-serial port
// with a test-only yamux client. It runs only when MOAT_GUEST_VM_DIR names a
// built asset directory (go run ./build/guest -out DIR → DIR/<arch>); the
// arch comes from its manifest (amd64: q35, arm64: virt, both under TCG).
// MOAT_VMTEST_CMDLINE is appended to the kernel command line (experiments).
package vmtest

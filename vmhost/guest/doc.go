//go:build linux

// Package guest is the root of the Moat guest agent, the static binary that
// runs as /init (PID 1) inside every sandbox VM and serves the host↔guest
// protocol (vmhost/protocol/PROTOCOL.md). It holds no code; the pieces are:
//
//   - cmd/moat-guest: the command (PID 1, or -listen unix:PATH for development)
//   - boot: PID 1 duties — mounts, modules, channel, sandbox config
//     (overlay root + switch_root, shares, network), shutdown
//   - server: the protocol server (yamux; hello, exec with PTY/pipes, shutdown)
//   - reaper: the single wait4 loop; every child is started through it
//   - passwd: /etc/passwd and /etc/group resolution, exec environment
//   - netcfg: interface, address and route setup without userland tools
//   - modules: modules.dep parsing and load order
//   - clock: CLOCK_BOOTTIME milestones
//   - vmtest: the end-to-end boot test in QEMU
package guest

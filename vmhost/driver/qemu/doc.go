// Package qemu is the QEMU driver: each machine is a qemu-system-* child
// process of the supervisor.
//
// It registers itself as "qemu" with package driver on Linux and macOS
// (Homebrew's qemu); on other systems the package is empty.
//
// What the driver sets up, per machine, in Spec.RunDir:
//
//	qmp.sock     QMP control socket (the driver keeps one connection open)
//	agent.sock   host end of the virtio-serial port protocol.ChannelName
//	qemu.pid     pid file written by qemu
//	qemu.log     qemu's own stdout/stderr
//
// Acceleration is chosen per Start: MOAT_ACCEL (auto, kvm, tcg, hvf)
// overrides Options.Accel. "auto" uses hvf on macOS and, on Linux, KVM only
// when a probe shows it works: a /dev/kvm that exists but hangs (nested
// virtualisation without support) falls back to TCG with a one-line warning.
// The probe's verdict is cached per host boot.
//
// Lifetime: qemu runs in its own process group (a Ctrl-C in the
// supervisor's terminal does not reach it) and, on Linux, with
// PR_SET_PDEATHSIG=SIGKILL, so a VM never outlives the supervisor that
// started it: if the supervisor dies, even by SIGKILL, the kernel kills qemu.
// The death signal is tied to the OS thread that forked qemu, so the driver
// forks from a goroutine locked to its thread that stays alive until qemu
// exits. macOS has no death signal: there a qemu whose supervisor died keeps
// running, and the supervisor must find it again (qemu.pid) or Kill it.
package qemu

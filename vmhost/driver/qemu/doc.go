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
// The console log (Spec.ConsoleLog, default RunDir/console.log) is
// truncated at every Start, so its tail always belongs to this boot; boot
// errors quote it (driver.ConsoleTail).
//
// Err after Done is nil for a guest power-off and for a stop the host asked
// for (Shutdown falling back to QMP quit); it is an error for SIGKILL (Kill
// included: "qemu was killed (signal 9, killed)"), a non-zero exit, a guest
// reboot or kernel panic (qemu runs with -no-reboot and the kernel with
// panic=-1, so both end qemu with status 0: the QMP SHUTDOWN event's reason
// tells them apart), and a SIGTERM/SIGINT from outside.
//
// Boot speed under TCG: about 3 s of a Debian bzImage's boot is spent
// decompressing it; qemu also accepts the uncompressed ELF vmlinux (PVH entry),
// which boots the same guest ~3 s sooner there. Spec.Kernel may be either.
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

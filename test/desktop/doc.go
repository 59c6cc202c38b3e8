// Package desktop is the real-app test of the desktop app on Linux: the GUI
// binary under Xvfb and a private D-Bus session, a real daemon and a real
// VM. It drives the tray over D-Bus (com.canonical.dbusmenu), answers the
// folder chooser with MOAT_APP_CHOOSE_FOLDER, and proves the xterm opened
// by the exec bridge is attached to the sandbox by typing into it (xdotool)
// a command that writes a file into the workspace from inside the guest.
//
// It runs only with MOAT_DESKTOP_TEST=1 (make test-desktop); then missing
// prerequisites skip it, or fail it under MOAT_REQUIRE_VM=1.
//
// Prerequisites: apt-get install libgtk-3-dev libwebkit2gtk-4.1-dev xvfb
// xterm xdotool imagemagick dbus gnome-keyring qemu-system-x86, and guest
// assets (make guest; MOAT_GUEST_DIR).
package desktop

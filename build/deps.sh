#!/usr/bin/env bash
# Installs the Debian packages Moat's build and tests need, only those missing.
# Usage: build/deps.sh [build|test|template]   (test adds what the test suite needs,
# template what build/templates/claude needs)
set -euo pipefail
need=(qemu-system-x86 qemu-utils busybox-static cpio kmod e2fsprogs dpkg-dev xz-utils zstd)
if [ "${1:-build}" = test ]; then
  need+=(tmux dbus gnome-keyring qemu-system-arm systemd mmdebstrap
         chromium fonts-dejavu-core libgtk-3-dev libwebkit2gtk-4.1-dev pkg-config xvfb xterm xdotool imagemagick)
fi
if [ "${1:-build}" = template ]; then
  need+=(mmdebstrap)  # and npm (any install: Debian's or nodejs.org's)
fi
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "moat: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o DPkg::Lock::Timeout=600 >/dev/null
apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null

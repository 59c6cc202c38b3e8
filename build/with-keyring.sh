#!/usr/bin/env bash
# Runs a command inside a private D-Bus session that has a real, unlocked,
# throwaway Secret Service (gnome-keyring), so keychain tests exercise the
# same code path as a desktop session without touching anyone's keyring.
# Usage: build/with-keyring.sh CMD [ARGS...]
set -euo pipefail
if [ -z "${MOAT_IN_KEYRING_SESSION:-}" ]; then
  for bin in dbus-run-session dbus-send gnome-keyring-daemon; do
    command -v "$bin" >/dev/null || { echo "with-keyring: $bin missing; install: apt-get install dbus gnome-keyring" >&2; exit 1; }
  done
  exec env -u DISPLAY MOAT_IN_KEYRING_SESSION=1 dbus-run-session -- "$0" "$@"
fi
tmp=$(mktemp -d /tmp/moat-keyring.XXXXXX)
mkdir -p "$tmp/home/.cache" "$tmp/home/.local/share/keyrings" "$tmp/run"
chmod 700 "$tmp/run"
# A newline (not empty input) makes gnome-keyring create and unlock the login collection.
echo '' | HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" XDG_DATA_HOME="$tmp/home/.local/share" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$tmp/daemon.log" 2>&1 &
gkd=$!
cleanup() { kill "$gkd" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
# Wait until the daemon owns the name: an earlier call would D-Bus-activate a second, locked daemon.
for _ in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
       org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; then
    export MOAT_TEST_SECRET_SERVICE=1
    "$@"
    exit $?
  fi
  sleep 0.1
done
echo "with-keyring: gnome-keyring did not start:" >&2; cat "$tmp/daemon.log" >&2
exit 1

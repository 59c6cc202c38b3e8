#!/usr/bin/env bash
# Type-checks the macOS-only Go files (cgo, Virtualization.framework), which
# cannot be compiled here (no macOS SDK). gopls with GOOS=darwin CGO_ENABLED=1
# checks types and imports; it does not check C calls and does not link.
set -euo pipefail
cd "$(dirname "$0")/.."
gopls_bin="$(go env GOPATH)/bin/gopls"
if ! "$gopls_bin" version 2>/dev/null | grep -q 'v0.23.0'; then
  echo "installing gopls v0.23.0 (v0.24 needs a newer Go)"
  (cd / && GOFLAGS= go install golang.org/x/tools/gopls@v0.23.0)
fi
files=$(git ls-files '*.go' | xargs grep -l -E '^//go:build .*darwin' 2>/dev/null || true)
files="$files $(git ls-files '*_darwin.go')"
files=$(echo $files | tr ' ' '\n' | sort -u)
[ -n "$files" ] || { echo "no darwin files"; exit 0; }
for arch in arm64 amd64; do
  out=$(GOOS=darwin GOARCH=$arch CGO_ENABLED=1 "$gopls_bin" check $files 2>&1 || true)
  if [ -n "$out" ]; then
    echo "darwin/$arch type errors:"; echo "$out"; exit 1
  fi
done
echo "darwin type-check ok: $(echo $files | wc -w) files"

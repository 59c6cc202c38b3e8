# Moat build. `make build` → bin/moat and bin/guest/<arch>/ (guest boot assets).
SHELL := /bin/bash
GO ?= go
ARCH ?= $(shell $(GO) env GOARCH)
BIN := $(CURDIR)/bin
GUEST_DIR := $(BIN)/guest
WORKSPACE ?= $(CURDIR)/examples/demo-project
AGENT ?= claude
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/moatsandbox/moat/internal/version.Version=$(VERSION)
TEST_TIMEOUT ?= 25m

export MOAT_GUEST_DIR := $(GUEST_DIR)

.PHONY: all build deps test-deps moat guest guest-arm64 template frontend app app-windows run test test-unit test-go test-frontend test-desktop cross vet bench clean

APP_TAGS ?= desktop,production,webkit2_41

all: build

build: deps moat guest

deps:
	@build/deps.sh build

test-deps:
	@build/deps.sh test

moat:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/moat .

# Guest boot assets (kernel, initramfs with the guest agent, modules disk, test base disk).
guest:
	$(GO) run ./build/guest -arch $(ARCH) -out $(GUEST_DIR)

guest-arm64:
	$(GO) run ./build/guest -arch arm64 -out $(GUEST_DIR)

# The default Claude Code template (Debian bookworm via mmdebstrap + the pinned Claude Code
# from npm), loaded into the template store as "claude". Cold 4-10 min (apt and npm downloads,
# then ~1.5 min converting to ext4); the image layout is cached in ~/.cache/moat/templates/claude
# and the disk in the store, so a second run takes seconds.
template:
	@command -v mmdebstrap >/dev/null || build/deps.sh template
	@command -v npm >/dev/null || { echo "make template needs npm (apt-get install npm)"; exit 1; }
	$(GO) run ./build/templates/claude -arch $(ARCH)

# The desktop app's web UI (Vite + TypeScript), embedded by app/desktop.
frontend:
	cd frontend && npm ci --no-audit --no-fund && npm run build
	find app/desktop/dist -mindepth 1 ! -name .gitignore -delete
	cp -r frontend/dist/. app/desktop/dist/

# The desktop app (Wails window + tray; needs cgo, GTK 3 and WebKitGTK 4.1).
app: frontend
	$(GO) build -trimpath -tags $(APP_TAGS) -ldflags "$(LDFLAGS)" -o $(BIN)/moat-app .

app-windows: frontend
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -tags desktop,production -ldflags "$(LDFLAGS) -H windowsgui" -o $(BIN)/moat-app.exe .

# The main job: Claude Code in a sandbox for WORKSPACE (default: examples/demo-project).
run: build template
	$(BIN)/moat run $(AGENT) "$(WORKSPACE)"

# The whole suite: unit tests, the real-VM suites under QEMU, cross-builds.
test: test-deps build vet cross test-go test-frontend test-desktop

test-go:
	MOAT_REQUIRE_VM=1 MOAT_REQUIRE_KEYRING=1 build/with-keyring.sh $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 1 ./...

# Vitest with the bindings mocked, then the built page in headless Chromium.
test-frontend:
	cd frontend && npm ci --no-audit --no-fund && npm test && npm run e2e

# The real app under Xvfb and D-Bus against a real daemon and VM (tray menu over D-Bus, xterm via the exec bridge).
test-desktop: app guest
	MOAT_DESKTOP_TEST=1 MOAT_REQUIRE_VM=1 MOAT_APP_BIN=$(BIN)/moat-app MOAT_DESKTOP_SCREENSHOT=$(CURDIR)/docs/screenshots/app-linux.png \
	  dbus-run-session -- $(GO) test -count=1 -v -run TestRealApp ./test/desktop

test-unit:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# Code we cannot run here must still build: Windows cross-compile, guest agent for arm64.
cross:
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -o /dev/null ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./vmhost/guest/cmd/moat-guest
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -tags desktop,production -o /dev/null .
	build/typecheck-darwin.sh

bench: build
	$(GO) run ./bench -runs 50 -out docs/benchmarks.md

clean:
	rm -rf $(BIN)

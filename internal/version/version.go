// Package version holds the build's version string, set by the linker
// (-X github.com/moatsandbox/moat/internal/version.Version=...).
package version

// Version is the moat build version; "dev" for plain `go build`.
var Version = "dev"

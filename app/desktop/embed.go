package desktop

import (
	"embed"
	"io/fs"
)

// dist is the built frontend, copied here by `make frontend` (only its
// .gitignore is committed, so a plain `go build` works before that).
//
//go:embed all:dist
var dist embed.FS

// fallback is served when the frontend was not built: a minimal page over
// the same bindings (list, badges, "Run Claude in folder…").
//
//go:embed fallback
var fallback embed.FS

// frontendFS is the page Wails serves.
func frontendFS() fs.FS {
	if _, err := fs.Stat(dist, "dist/index.html"); err == nil {
		sub, _ := fs.Sub(dist, "dist")
		return sub
	}
	sub, _ := fs.Sub(fallback, "fallback")
	return sub
}

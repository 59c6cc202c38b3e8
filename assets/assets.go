// Package assets holds the tray icons, status badges and the application
// icon, drawn by gen.go (`go generate ./assets`) and committed.
package assets

import "embed"

//go:generate go run gen.go

//go:embed *.png *.ico
var FS embed.FS

// Icon returns an embedded file by name ("tray-running.png", "badge-error.ico", ...).
func Icon(name string) []byte {
	b, err := FS.ReadFile(name)
	if err != nil {
		panic("assets: missing " + name)
	}
	return b
}

//go:build !production && !dev

package desktop

// guiBuilt is false: Wails compiled its stub (no cgo, no webview).
const guiBuilt = false

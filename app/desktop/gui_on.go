//go:build production || dev

package desktop

const guiBuilt = true

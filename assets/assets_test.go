package assets

import (
	"bytes"
	"image/png"
	"testing"
)

func TestIconsDecode(t *testing.T) {
	for _, n := range []string{"tray-idle", "tray-running", "tray-error", "badge-running", "badge-starting", "badge-stopped", "badge-error"} {
		img, err := png.Decode(bytes.NewReader(Icon(n + ".png")))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if img.Bounds().Dx() == 0 {
			t.Fatal(n)
		}
		if ico := Icon(n + ".ico"); !bytes.Equal(ico[22:], Icon(n+".png")) {
			t.Errorf("%s.ico does not wrap the png", n)
		}
	}
	if _, err := png.Decode(bytes.NewReader(Icon("moat.png"))); err != nil {
		t.Fatal(err)
	}
}

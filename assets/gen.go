//go:build ignore

// gen draws the tray icons and status badges as PNG (and ICO for Windows):
// `go generate ./assets`. Simple shapes: a moat (ring) around a square
// keep, coloured by state; badges are filled dots.
package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
)

var (
	grey   = color.NRGBA{0x8a, 0x8f, 0x98, 0xff}
	green  = color.NRGBA{0x2e, 0xb8, 0x5c, 0xff}
	yellow = color.NRGBA{0xf2, 0xb2, 0x1b, 0xff}
	red    = color.NRGBA{0xe0, 0x3b, 0x3b, 0xff}
	blue   = color.NRGBA{0x3a, 0x7b, 0xd5, 0xff}
	white  = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

// cover is how much of pixel (x, y) lies within distance r of (cx, cy),
// approximated with 4x4 supersampling (anti-aliased edges).
func cover(x, y int, f func(px, py float64) bool) float64 {
	n := 0
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			if f(float64(x)+(float64(i)+0.5)/4, float64(y)+(float64(j)+0.5)/4) {
				n++
			}
		}
	}
	return float64(n) / 16
}

func blend(img *image.NRGBA, x, y int, c color.NRGBA, a float64) {
	if a <= 0 {
		return
	}
	o := img.NRGBAAt(x, y)
	ca := a * float64(c.A) / 255
	oa := float64(o.A) / 255
	na := ca + oa*(1-ca)
	mix := func(cv, ov uint8) uint8 {
		if na == 0 {
			return 0
		}
		return uint8((float64(cv)*ca + float64(ov)*oa*(1-ca)) / na)
	}
	img.SetNRGBA(x, y, color.NRGBA{mix(c.R, o.R), mix(c.G, o.G), mix(c.B, o.B), uint8(na * 255)})
}

func shape(img *image.NRGBA, c color.NRGBA, f func(px, py float64) bool) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			blend(img, x, y, c, cover(x, y, f))
		}
	}
}

func disc(cx, cy, r float64) func(float64, float64) bool {
	return func(x, y float64) bool { return math.Hypot(x-cx, y-cy) <= r }
}

func ring(cx, cy, r0, r1 float64) func(float64, float64) bool {
	return func(x, y float64) bool { d := math.Hypot(x-cx, y-cy); return d >= r0 && d <= r1 }
}

func rect(x0, y0, x1, y1 float64) func(float64, float64) bool {
	return func(x, y float64) bool { return x >= x0 && x <= x1 && y >= y0 && y <= y1 }
}

// trayIcon: ring (the moat) + keep; dot in the corner for the state.
func trayIcon(size int, moat color.NRGBA, dot *color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	shape(img, moat, ring(s/2, s/2, s*0.34, s*0.46))
	shape(img, moat, rect(s*0.36, s*0.36, s*0.64, s*0.64))
	if dot != nil {
		shape(img, white, disc(s*0.78, s*0.78, s*0.22))
		shape(img, *dot, disc(s*0.78, s*0.78, s*0.17))
	}
	return img
}

func badge(size int, c color.NRGBA, hollow bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	if hollow {
		shape(img, c, ring(s/2, s/2, s*0.22, s*0.36))
	} else {
		shape(img, c, disc(s/2, s/2, s*0.36))
	}
	return img
}

func encode(img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

// ico wraps one PNG in an ICO container (Vista+ reads PNG entries).
func ico(p []byte, size int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint16{0, 1, 1})
	dim := byte(size)
	if size >= 256 {
		dim = 0
	}
	b.Write([]byte{dim, dim, 0, 0})
	binary.Write(&b, binary.LittleEndian, []uint16{1, 32})
	binary.Write(&b, binary.LittleEndian, []uint32{uint32(len(p)), 22})
	b.Write(p)
	return b.Bytes()
}

func write(name string, img image.Image) {
	p := encode(img)
	if err := os.WriteFile(name+".png", p, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(name+".ico", ico(p, img.Bounds().Dx()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	write("tray-idle", trayIcon(32, grey, nil))
	write("tray-running", trayIcon(32, blue, &green))
	write("tray-error", trayIcon(32, blue, &red))
	write("badge-running", badge(16, green, false))
	write("badge-starting", badge(16, yellow, false))
	write("badge-stopped", badge(16, grey, true))
	write("badge-error", badge(16, red, false))
	// the application icon (.desktop, window)
	app := trayIcon(256, blue, nil)
	p := encode(app)
	if err := os.WriteFile("moat.png", p, 0o644); err != nil {
		log.Fatal(err)
	}
}

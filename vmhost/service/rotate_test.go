package service

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRotatingFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vmhost.log")
	os.WriteFile(p, []byte("old line\n"), 0o600) // appended to, counted
	r, err := OpenRotating(p, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	var rotated []string
	r.OnRotate = func(f *os.File) { rotated = append(rotated, f.Name()) }
	line := func(i int) []byte { return fmt.Appendf(nil, "line %02d %s\n", i, strings.Repeat("x", 31)) } // 40 bytes
	for i := 0; i < 10; i++ {
		if n, err := r.Write(line(i)); err != nil || n != 40 {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	r.Close()
	read := func(name string) string { b, _ := os.ReadFile(name); return string(b) }
	// 9 + 40 + 40 = 89; the next line would pass 100: rotate. Then 2 lines
	// per file: [old,0,1] [2,3] [4,5] [6,7] [8,9]; keep 2 old files.
	if got, want := read(p), string(line(8))+string(line(9)); got != want {
		t.Errorf("current:\n%s\nwant:\n%s", got, want)
	}
	if got, want := read(p+".1"), string(line(6))+string(line(7)); got != want {
		t.Errorf(".1:\n%s", got)
	}
	if got, want := read(p+".2"), string(line(4))+string(line(5)); got != want {
		t.Errorf(".2:\n%s", got)
	}
	if _, err := os.Stat(p + ".3"); !os.IsNotExist(err) {
		t.Errorf(".3 exists: keep is 2")
	}
	if len(rotated) != 4 || rotated[0] != p {
		t.Errorf("OnRotate calls: %v", rotated)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestRotatingFileBigWriteAndKeepNone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	r, _ := OpenRotating(p, 10, -1)
	r.Write([]byte("abc\n"))
	big := bytes.Repeat([]byte("y"), 25)
	r.Write(big) // larger than MaxSize: whole, in a fresh file
	r.Write([]byte("z\n"))
	r.Close()
	if b, _ := os.ReadFile(p); string(b) != "z\n" {
		t.Errorf("current %q", b)
	}
	if _, err := os.Stat(p + ".1"); !os.IsNotExist(err) {
		t.Errorf("keep none left %s.1", p)
	}
}

func TestRotatingFileConcurrent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	r, _ := OpenRotating(p, 1000, 50)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				fmt.Fprintf(r, "g%d i%03d\n", g, i) // 8 bytes
			}
		}(g)
	}
	wg.Wait()
	r.Close()
	total := 0
	files, _ := filepath.Glob(p + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 1000 {
			t.Errorf("%s has %d bytes", f, len(b))
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if len(l) != 7 {
				t.Errorf("torn line %q in %s", l, f)
			}
			total++
		}
	}
	if total != 800 {
		t.Errorf("%d lines, want 800", total)
	}
}

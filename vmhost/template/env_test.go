package template

import (
	"reflect"
	"testing"
)

func TestMergeEnv(t *testing.T) {
	im := &Image{Env: []string{"PATH=/img/bin:/bin", "LANG=C.UTF-8", "EMPTY="}}
	got := im.ExecEnv([]string{"TERM=xterm", "PATH=/mine", "LANG=fr_FR.UTF-8", "TERM=vt100"})
	want := []string{"PATH=/mine", "LANG=fr_FR.UTF-8", "EMPTY=", "TERM=vt100"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ExecEnv: %q, want %q", got, want)
	}
	if got := MergeEnv(nil, nil); len(got) != 0 {
		t.Fatalf("empty: %q", got)
	}
	if got := im.ExecEnv(nil); !reflect.DeepEqual(got, im.Env) {
		t.Fatalf("no request env: %q", got)
	}
	if im.Env[0] != "PATH=/img/bin:/bin" {
		t.Fatal("ExecEnv changed the image's env")
	}
}

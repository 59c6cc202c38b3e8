package agents

import (
	"reflect"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Table {
		if a.Name == "" || a.Binary == "" || len(a.Command) == 0 || a.Template == "" {
			t.Errorf("incomplete entry %+v", a)
		}
		if seen[a.Name] {
			t.Errorf("duplicate %q", a.Name)
		}
		seen[a.Name] = true
	}
	c, err := Lookup("claude")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Argv(nil); !reflect.DeepEqual(got, []string{"claude", "--dangerously-skip-permissions"}) {
		t.Errorf("claude argv %v", got)
	}
	if got := c.Argv([]string{"--help"}); !reflect.DeepEqual(got, []string{"claude", "--help"}) {
		t.Errorf("claude argv with args %v", got)
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "claude, shell") {
		t.Errorf("unknown agent error %v", err)
	}
}

package service

import (
	"reflect"
	"testing"
)

func TestWindowsConfigFields(t *testing.T) {
	env := map[string]string{"MOAT_HOME": `C:\Users\u\AppData\Local\Moat`, EnvManager: "windows"}
	c := WindowsConfig(Spec{Exe: `C:\Program Files\Moat\moat.exe`, Args: []string{"vmhost"}, Env: env})
	if c.Name != "MoatVMHost" || c.DisplayName != "Moat VM host" || c.Description == "" {
		t.Errorf("names: %q %q %q", c.Name, c.DisplayName, c.Description)
	}
	if c.Executable != `C:\Program Files\Moat\moat.exe` || !reflect.DeepEqual(c.Arguments, []string{"vmhost"}) {
		t.Errorf("command: %q %q", c.Executable, c.Arguments)
	}
	if !reflect.DeepEqual(c.EnvVars, env) {
		t.Errorf("env: %v", c.EnvVars)
	}
	if c.UserName != "" {
		t.Errorf("UserName %q: the service must run as LocalSystem (HCS)", c.UserName)
	}
	want := map[string]any{
		"StartType":              "automatic",
		"OnFailure":              "restart",
		"OnFailureDelayDuration": "5s",
		"OnFailureResetPeriod":   60,
		"DelayedAutoStart":       false,
	}
	if !reflect.DeepEqual(map[string]any(c.Option), want) {
		t.Errorf("options: %v", c.Option)
	}
}

//go:build linux

package desktop

import (
	"encoding/json"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/wailsapp/wails/v2/pkg/options"
)

// handOff gives a second launch's arguments to the running instance and
// reports whether it did. Wails on Linux does the same, but only after it
// has called OnStartup (so the second instance would start its own tray
// and run the folders itself) and then exits with status 1; this speaks
// Wails' protocol (the SendMessage method of its D-Bus name) first.
func handOff(uniqueID string, args []string, wd string) bool {
	id := "wails_app_" + strings.ReplaceAll(strings.ReplaceAll(uniqueID, "-", "_"), ".", "_")
	name, path := "org."+id+".SingleInstance", "/org/"+id+"/SingleInstance"
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return false
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil || !has {
		return false
	}
	b, err := json.Marshal(options.SecondInstanceData{Args: args, WorkingDirectory: wd})
	if err != nil {
		return false
	}
	return conn.Object(name, dbus.ObjectPath(path)).Call(name+".SendMessage", 0, string(b)).Err == nil
}

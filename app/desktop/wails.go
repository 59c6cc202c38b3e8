package desktop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	"github.com/wailsapp/wails/v2/pkg/options/mac"
	wruntime "github.com/wailsapp/wails/v2/pkg/runtime"

	"github.com/moatsandbox/moat/app/terminal"
	"github.com/moatsandbox/moat/app/tray"
	"github.com/moatsandbox/moat/assets"
	"github.com/moatsandbox/moat/keychain"
	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/state"
)

// ErrNoGUI: this binary was built without the window (plain `go build`).
var ErrNoGUI = errors.New("this moat was built without the desktop app; build it with `make app` (go build -tags desktop,production,webkit2_41)")

// GUIBuilt reports whether this binary can open the window.
func GUIBuilt() bool { return guiBuilt }

// ErrNoDisplay: no graphical session to open the window in.
var ErrNoDisplay = errors.New("no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set); the CLI works without one: see `moat --help`")

// CanShow reports whether a window can be opened here: built with the
// window, and on Linux and the BSDs inside an X11 or Wayland session.
func CanShow() bool {
	if !guiBuilt {
		return false
	}
	switch goruntime.GOOS {
	case "darwin", "windows":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// Options of Run.
type Options struct {
	// Paths to run a sandbox for at start (moat app PATH...).
	Paths []string
	// Connect is the CLI's connect: a client of the daemon, auto-started.
	Connect func(ctx context.Context) (*api.Client, error)
}

// wailsRuntime is Runtime over the Wails runtime of a running window.
type wailsRuntime struct{ ctx context.Context }

func (w wailsRuntime) Emit(event string, data any) { wruntime.EventsEmit(w.ctx, event, data) }

func (w wailsRuntime) ChooseFolder(title string) (string, error) {
	return wruntime.OpenDirectoryDialog(w.ctx, wruntime.OpenDialogOptions{Title: title, CanCreateDirectories: true})
}

func (w wailsRuntime) Confirm(title, message, yes string) bool {
	r, err := wruntime.MessageDialog(w.ctx, wruntime.MessageDialogOptions{Type: wruntime.QuestionDialog, Title: title, Message: message,
		Buttons: []string{yes, "Cancel"}, DefaultButton: "Cancel", CancelButton: "Cancel"})
	// GTK and Windows show Yes/No whatever the buttons; macOS shows ours.
	return err == nil && (r == yes || r == "Yes" || r == "Ok" || r == "OK")
}

func (w wailsRuntime) ShowWindow() {
	wruntime.WindowShow(w.ctx)
	wruntime.WindowUnminimise(w.ctx)
}

func (w wailsRuntime) Quit() { wruntime.Quit(w.ctx) }

// reveal opens a folder in the file manager.
func reveal(path string) error {
	var cmd *exec.Cmd
	switch goruntime.GOOS {
	case "darwin":
		cmd = exec.Command("open", path)
	case "windows":
		cmd = exec.Command("explorer.exe", path)
	default:
		cmd = exec.Command("xdg-open", path)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open the file manager: %w", err)
	}
	go cmd.Wait()
	return nil
}

// appPaths picks the folders out of a second launch's arguments
// (`moat app [flags] PATH...`), resolved against its working directory.
func appPaths(args []string, wd string) []string {
	if len(args) > 0 && args[0] == "app" {
		args = args[1:]
	}
	var out []string
	for _, a := range args {
		if a == "" || strings.HasPrefix(a, "-") {
			continue
		}
		if !filepath.IsAbs(a) && wd != "" {
			a = filepath.Join(wd, a)
		}
		out = append(out, a)
	}
	return out
}

// lockID is one single-instance lock per state dir (MOAT_HOME).
func lockID(home string) string {
	h := sha256.Sum256([]byte(home))
	return "dev.moat.app." + hex.EncodeToString(h[:8])
}

// Run runs the desktop app until it quits.
func Run(o Options) error {
	if !guiBuilt {
		return ErrNoGUI
	}
	if !CanShow() {
		return ErrNoDisplay
	}
	l, err := state.Default()
	if err != nil {
		return err
	}
	if err := l.EnsureHome(); err != nil {
		return err
	}
	moat, err := terminal.Moat()
	if err != nil {
		return err
	}
	// A second instance forwards os.Args[1:] with the directory of the
	// executable as its working directory (Wails' SecondInstanceData), so
	// make the paths absolute here, before the lock is tried.
	wd, _ := os.Getwd()
	abs := appPaths(o.Paths, wd)
	os.Args = append([]string{os.Args[0], "app"}, abs...)
	if handOff(lockID(l.Home), os.Args[1:], wd) {
		return nil
	}

	tr := tray.New(tray.Systray{})
	app := NewApp(Config{
		Connect: func(ctx context.Context) (Daemon, error) {
			c, err := o.Connect(ctx)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Keychain:     keychain.New(),
		SettingsPath: filepath.Join(l.Home, SettingsFile),
		Moat:         moat,
		Reveal:       reveal,
		Service:      NewService(l),
		Tray:         tr,
	})
	onReady := func() {
		go tr.Loop()
		go func() {
			for in := range tr.Intents() {
				app.handle(in)
			}
		}()
	}
	trayInStartup, trayEnd := startTray(onReady)
	tr.Show(tray.State{})

	var rt wailsRuntime
	return wails.Run(&options.App{
		Title:             "Moat",
		Width:             960,
		Height:            640,
		MinWidth:          640,
		MinHeight:         420,
		HideWindowOnClose: true, // the tray keeps running; Quit is in its menu
		AssetServer:       &assetserver.Options{Assets: frontendFS()},
		Bind:              []any{app},
		DragAndDrop:       &options.DragAndDrop{EnableFileDrop: true},
		OnStartup: func(ctx context.Context) {
			rt = wailsRuntime{ctx}
			app.attach(rt)
			wruntime.OnFileDrop(ctx, func(_, _ int, paths []string) { app.runFolders(paths) })
			trayInStartup()
			if len(abs) > 0 {
				app.runFolders(abs)
			}
		},
		OnShutdown: func(context.Context) {
			app.close()
			tr.Close()
			trayEnd()
		},
		SingleInstanceLock: &options.SingleInstanceLock{
			UniqueId: lockID(l.Home),
			OnSecondInstanceLaunch: func(d options.SecondInstanceData) {
				if rt.ctx != nil {
					rt.ShowWindow()
				}
				app.runFolders(appPaths(d.Args, d.WorkingDirectory))
			},
		},
		Mac: &mac.Options{
			// Folders dropped on the Dock icon or opened with Moat (Info.plist
			// CFBundleDocumentTypes: public.folder).
			OnFileOpen: func(path string) { app.runFolders([]string{path}) },
			About:      &mac.AboutInfo{Title: "Moat", Message: "Coding agents in microVM sandboxes", Icon: assets.Icon("moat.png")},
		},
		Linux: &linux.Options{Icon: assets.Icon("moat.png"), ProgramName: "moat"},
	})
}

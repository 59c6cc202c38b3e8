package desktop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/moatsandbox/moat/vmhost/assets"
)

const (
	menuPath  = "/StatusNotifierItem/menu"
	menuIface = "com.canonical.dbusmenu"
)

type node struct {
	ID       int32
	Props    map[string]dbus.Variant
	Children []node
}

func (n node) label() string {
	if v, ok := n.Props["label"]; ok {
		s, _ := v.Value().(string)
		return s
	}
	return ""
}

func (n node) find(pred func(node) bool) (node, bool) {
	if pred(n) {
		return n, true
	}
	for _, c := range n.Children {
		if f, ok := c.find(pred); ok {
			return f, true
		}
	}
	return node{}, false
}

func (n node) dump(ind string, b *strings.Builder) {
	if l := n.label(); l != "" || n.ID != 0 {
		icon := ""
		if v, ok := n.Props["icon-data"]; ok {
			icon = fmt.Sprintf(" [icon %d bytes]", len(v.Value().([]byte)))
		}
		fmt.Fprintf(b, "%s%d %q%s\n", ind, n.ID, l, icon)
	}
	for _, c := range n.Children {
		c.dump(ind+"  ", b)
	}
}

func parse(v any) node {
	s := v.([]any)
	n := node{ID: s[0].(int32), Props: s[1].(map[string]dbus.Variant)}
	for _, c := range s[2].([]dbus.Variant) {
		n.Children = append(n.Children, parse(c.Value()))
	}
	return n
}

// layout reads the whole menu. After a reset the first GetLayout returns
// one level only (FACTS.md), so it is read twice.
func layout(obj dbus.BusObject) (node, error) {
	var n node
	for i := 0; i < 2; i++ {
		var rev uint32
		var raw []any
		call := obj.Call(menuIface+".GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err != nil {
			return n, call.Err
		}
		if err := call.Store(&rev, &raw); err != nil {
			return n, err
		}
		n = parse(raw)
	}
	return n, nil
}

func click(obj dbus.BusObject, id int32) error {
	return obj.Call(menuIface+".Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(0)).Err
}

func need(t *testing.T) func(string, ...any) {
	if os.Getenv("MOAT_DESKTOP_TEST") != "1" {
		t.Skip("the real-app test runs with MOAT_DESKTOP_TEST=1 (make test-desktop)")
	}
	if os.Getenv("MOAT_REQUIRE_VM") == "1" {
		return t.Fatalf
	}
	return t.Skipf
}

func start(t *testing.T, name string, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

func TestRealApp(t *testing.T) {
	skip := need(t)
	if runtime.GOOS != "linux" {
		skip("linux only")
	}
	for _, bin := range []string{"Xvfb", "xterm", "xdotool", "import", "dbus-daemon", "qemu-system-x86_64", "pkg-config"} {
		if _, err := exec.LookPath(bin); err != nil {
			skip("%s is not installed (apt-get install xvfb xterm xdotool imagemagick dbus qemu-system-x86 pkg-config)", bin)
		}
	}
	if err := exec.Command("pkg-config", "--exists", "webkit2gtk-4.1", "gtk+-3.0").Run(); err != nil {
		skip("webkit2gtk-4.1/gtk3 development files are missing (apt-get install libgtk-3-dev libwebkit2gtk-4.1-dev)")
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		t.Log("no /dev/kvm: the VM runs under TCG (slow)")
	}
	a, err := assets.Find(runtime.GOARCH)
	if err != nil {
		skip("guest assets are missing: %v (make guest)", err)
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "moat")
	if p := os.Getenv("MOAT_APP_BIN"); p != "" {
		bin = p // prebuilt by make app
	} else {
		build := exec.Command("go", "build", "-tags", "desktop,production,webkit2_41", "-o", bin, "../..")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the app: %v\n%s", err, out)
		}
	}
	home := filepath.Join(tmp, "moat-home")
	userHome := filepath.Join(tmp, "home")
	rt := filepath.Join(tmp, "rt")
	ws := filepath.Join(tmp, "my proj $x") // a space and a $ through every layer
	for _, d := range []string{home, userHome, rt, ws} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The guest's user is not the host's root: the workspace must be
	// writable by it (t.TempDir is 0700).
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	settings := map[string]any{"terminal": "xterm", "defaultAgent": "shell", "customCommand": ""}
	b, _ := json.Marshal(settings)
	os.WriteFile(filepath.Join(home, "settings.json"), b, 0o600)

	// The X server: -displayfd writes the display number it picked.
	dispR, dispW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	xv := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1600x900x24", "-nolisten", "tcp")
	xv.ExtraFiles = []*os.File{dispW}
	start(t, "Xvfb", xv)
	dispW.Close()
	line, err := bufio.NewReader(dispR).ReadString('\n')
	dispR.Close()
	if err != nil {
		t.Fatalf("Xvfb did not report its display: %v", err)
	}
	display := ":" + strings.TrimSpace(line)

	// A private session bus (what dbus-run-session does).
	busAddr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if busAddr == "" || os.Getenv("MOAT_DESKTOP_OWN_BUS") != "" {
		dd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
		out, _ := dd.StdoutPipe()
		start(t, "dbus-daemon", dd)
		l, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("dbus-daemon: %v", err)
		}
		busAddr = strings.TrimSpace(l)
	}
	conn, err := dbus.Connect(busAddr)
	if err != nil {
		t.Fatalf("connect to the session bus: %v", err)
	}
	defer conn.Close()

	// A Secret Service for the keychain (FACTS.md): unlocked, on this bus.
	if _, err := exec.LookPath("gnome-keyring-daemon"); err == nil {
		gk := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
		gk.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+busAddr, "HOME="+userHome, "XDG_RUNTIME_DIR="+rt)
		gk.Stdin = strings.NewReader("\n")
		start(t, "gnome-keyring-daemon", gk)
		waitFor(t, 20*time.Second, "org.freedesktop.secrets on the bus", func() bool {
			var has bool
			err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&has)
			return err == nil && has
		})
	} else {
		t.Log("gnome-keyring is not installed: the window shows the keychain as unavailable")
	}

	appEnv := append(os.Environ(), "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+busAddr,
		"MOAT_HOME="+home, "MOAT_GUEST_DIR="+filepath.Dir(a.Dir), "HOME="+userHome, "XDG_RUNTIME_DIR="+rt,
		"MOAT_APP_CHOOSE_FOLDER="+ws, "TERM=xterm", "NO_AT_BRIDGE=1")
	moat := func(args ...string) (string, error) {
		c := exec.Command(bin, args...)
		c.Env = appEnv
		out, err := c.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := moat("reset", "-f"); err != nil {
			t.Logf("moat reset: %v\n%s", err, out)
		}
		moat("vmhost", "--stop")
	})

	appLog := filepath.Join(tmp, "app.log")
	lf, _ := os.Create(appLog)
	app := exec.Command(bin, "app")
	app.Env = appEnv
	app.Stdout, app.Stderr = lf, lf
	start(t, "moat app", app)
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(appLog)
			t.Logf("app log:\n%s", b)
			if b, err := os.ReadFile(filepath.Join(home, "vmhost.log")); err == nil {
				t.Logf("daemon log (tail):\n%s", tail(string(b), 30))
			}
		}
	}()

	busName := fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", app.Process.Pid)
	obj := conn.Object(busName, menuPath)
	var menu node
	waitFor(t, 60*time.Second, "the tray menu on D-Bus", func() bool {
		m, err := layout(obj)
		if err != nil {
			return false
		}
		menu = m
		_, ok := m.find(func(n node) bool { return n.label() == "Quit" })
		return ok
	})
	var sb strings.Builder
	menu.dump("", &sb)
	t.Logf("tray menu at start:\n%s", sb.String())
	for _, want := range []string{"Run Claude in folder…", "Open Moat", "Log in…", "Quit"} {
		if _, ok := menu.find(func(n node) bool { return n.label() == want }); !ok {
			t.Fatalf("no %q in the menu", want)
		}
	}
	run, _ := menu.find(func(n node) bool { return n.label() == "Run Claude in folder…" })
	if err := click(obj, run.ID); err != nil {
		t.Fatalf("click: %v", err)
	}

	// The sandbox runs and the menu shows it with the running badge.
	wantName := "shell-my-proj-x"
	var entry node
	waitFor(t, 4*time.Minute, "the sandbox running in the tray menu", func() bool {
		m, err := layout(obj)
		if err != nil {
			return false
		}
		e, ok := m.find(func(n node) bool { return strings.HasSuffix(n.label(), " — running") })
		if ok {
			menu, entry = m, e
		}
		return ok
	})
	sb.Reset()
	menu.dump("", &sb)
	t.Logf("tray menu with the sandbox:\n%s", sb.String())
	name := strings.TrimSuffix(entry.label(), " — running")
	if !strings.HasPrefix(name, "shell-my") {
		t.Errorf("sandbox %q, want one like %s", name, wantName)
	}
	icon, ok := entry.Props["icon-data"]
	if !ok || len(icon.Value().([]byte)) == 0 {
		t.Errorf("the sandbox entry has no badge icon")
	}
	png, _ := os.ReadFile("../../assets/badge-running.png")
	if ok && !bytes.Equal(icon.Value().([]byte), png) {
		t.Errorf("the badge is not the running badge")
	}
	// The tray icon's own state: title "1", tooltip, the running icon.
	sni := conn.Object(busName, "/StatusNotifierItem")
	if v, err := sni.GetProperty("org.kde.StatusNotifierItem.Title"); err != nil || v.Value() != "1" {
		t.Errorf("tray title %v (%v), want 1", v, err)
	}
	if v, err := sni.GetProperty("org.kde.StatusNotifierItem.ToolTip"); err != nil || !strings.Contains(fmt.Sprint(v.Value()), "Moat: 1 sandbox running") {
		t.Errorf("tray tooltip %v (%v)", v, err)
	} else {
		t.Logf("tray tooltip: %v", v.Value())
	}
	for _, sub := range []string{"Open in terminal", "Stop", "Reveal folder", "Remove…"} {
		if _, ok := entry.find(func(n node) bool { return n.label() == sub }); !ok {
			t.Errorf("no %q in the sandbox submenu", sub)
		}
	}
	out, err := moat("ls")
	t.Logf("moat ls:\n%s", out)
	if err != nil || !strings.Contains(out, name) || !strings.Contains(out, "running") {
		t.Fatalf("moat ls: %v", err)
	}
	// The exec bridge opened an xterm running `moat run NAME`.
	var win string
	waitFor(t, 60*time.Second, "the xterm window", func() bool {
		c := exec.Command("xdotool", "search", "--onlyvisible", "--class", "xterm")
		c.Env = appEnv
		out, err := c.Output()
		if err != nil {
			return false
		}
		win = strings.Fields(string(out))[0]
		return true
	})
	xdo := func(args ...string) {
		t.Helper()
		c := exec.Command("xdotool", args...)
		c.Env = appEnv
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("xdotool %q: %v\n%s", args, err, out)
		}
	}
	ps, _ := exec.Command("ps", "-eo", "pid,args").Output()
	for _, l := range strings.Split(string(ps), "\n") {
		if strings.Contains(l, "xterm") || strings.Contains(l, " run "+name) {
			t.Logf("process: %s", strings.TrimSpace(l))
		}
	}
	xdo("windowmove", win, "1116", "584") // bottom right, over the window's empty area
	// Wait for the guest shell's prompt, then type into the xterm: the
	// shell in the guest writes the marker into the workspace.
	time.Sleep(3 * time.Second)
	marker := filepath.Join(ws, "marker")
	typed := `echo "hi from $(uname -n) $(uname -r)" > marker`
	waitFor(t, 90*time.Second, "the marker written from inside the guest", func() bool {
		xdo("windowfocus", "--sync", win)
		xdo("type", "--delay", "20", typed)
		xdo("key", "Return")
		for i := 0; i < 20; i++ {
			if b, err := os.ReadFile(marker); err == nil && len(b) > 0 {
				return true
			}
			time.Sleep(250 * time.Millisecond)
		}
		return false
	})
	b, _ = os.ReadFile(marker)
	got := strings.TrimSpace(string(b))
	hn, _ := os.Hostname()
	t.Logf("marker: %q (the host is %s, kernel %s)", got, hn, hostKernel())
	// Written in the guest: its hostname is the sandbox's name and its
	// kernel is the guest kernel, not the host's.
	if f := strings.Fields(got); len(f) != 4 || f[0] != "hi" || f[2] != name || f[3] == hostKernel() {
		t.Fatalf("marker %q was not written by the sandbox %s's guest", got, name)
	}

	// The screenshot: the window with the running sandbox (and the xterm).
	time.Sleep(2 * time.Second)
	shot := filepath.Join(tmp, "app-linux.png")
	c := exec.Command("import", "-window", "root", shot)
	c.Env = appEnv
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if dst := os.Getenv("MOAT_DESKTOP_SCREENSHOT"); dst != "" {
		data, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", dst)
	}

	// A second launch with a folder (`moat app PATH`, as the .desktop file's
	// %F does) hands it to the running app through the single-instance
	// lock and exits; a relative path is resolved in the caller's directory.
	ws2 := filepath.Join(tmp, "second proj")
	os.MkdirAll(ws2, 0o777)
	os.Chmod(ws2, 0o777)
	second := exec.Command(bin, "app", "second proj")
	second.Dir = tmp
	second.Env = appEnv
	secondDone := make(chan error, 1)
	var secondOut bytes.Buffer
	second.Stdout, second.Stderr = &secondOut, &secondOut
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { secondDone <- second.Wait() }()
	select {
	case err := <-secondDone:
		if err != nil {
			t.Errorf("second launch: %v\n%s", err, secondOut.String())
		}
	case <-time.After(30 * time.Second):
		second.Process.Kill()
		t.Fatalf("the second launch did not hand over and exit:\n%s", secondOut.String())
	}
	waitFor(t, 4*time.Minute, "the second folder's sandbox running in the tray menu", func() bool {
		m, err := layout(obj)
		if err != nil {
			return false
		}
		_, ok := m.find(func(n node) bool { return n.label() == "shell-second-proj — running" })
		return ok
	})
	// exactly one terminal for it: the second process did not run it too
	time.Sleep(2 * time.Second)
	ps, _ = exec.Command("ps", "-eo", "args").Output()
	if n := strings.Count(string(ps), "xterm -e "+bin+" run shell-second-proj"); n != 1 {
		t.Errorf("%d terminals for the second folder, want 1", n)
	}
	out, _ = moat("ls")
	t.Logf("after the second launch:\n%s", out)
	if !strings.Contains(out, ws2) {
		t.Errorf("no sandbox for %s", ws2)
	}

	// Remove… from the sandbox's submenu asks first (a GTK Yes/No dialog);
	// Yes removes it.
	m, err := layout(obj)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := m.find(func(n node) bool { return n.label() == "shell-second-proj — running" })
	rm, ok := e2.find(func(n node) bool { return n.label() == "Remove…" })
	if !ok {
		t.Fatal("no Remove… for the second sandbox")
	}
	if err := click(obj, rm.ID); err != nil {
		t.Fatal(err)
	}
	var dlg string
	waitFor(t, 20*time.Second, "the confirmation dialog", func() bool {
		c := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Remove shell-second-proj$")
		c.Env = appEnv
		out, err := c.Output()
		if err != nil || len(strings.Fields(string(out))) == 0 {
			return false
		}
		dlg = strings.Fields(string(out))[0]
		return true
	})
	if out, _ := moat("ls"); !strings.Contains(out, "shell-second-proj") {
		t.Fatal("removed before the confirmation")
	}
	xdo("windowfocus", "--sync", dlg)
	xdo("key", "alt+y")
	waitFor(t, 60*time.Second, "the second sandbox removed", func() bool {
		out, err := moat("ls")
		return err == nil && !strings.Contains(out, "shell-second-proj")
	})
	if _, err := os.Stat(ws2); err != nil {
		t.Errorf("removing the sandbox touched its project folder: %v", err)
	}
	waitFor(t, 20*time.Second, "the tray without the removed sandbox", func() bool {
		m, err := layout(obj)
		if err != nil {
			return false
		}
		_, gone := m.find(func(n node) bool { return strings.HasPrefix(n.label(), "shell-second-proj") })
		return !gone
	})

	// Quit from the tray: the app exits.
	m, err = layout(obj)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := m.find(func(n node) bool { return n.label() == "Quit" })
	if err := click(obj, q.ID); err != nil {
		t.Fatalf("click Quit: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Errorf("the app did not quit from the tray")
	}
}

func hostKernel() string {
	out, _ := exec.Command("uname", "-r").Output()
	return strings.TrimSpace(string(out))
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

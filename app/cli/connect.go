package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/daemon"
	vmservice "github.com/moatsandbox/moat/vmhost/service"
	"github.com/moatsandbox/moat/vmhost/state"
)

// EnvNoAutostart, when set, stops the CLI from starting a daemon (tests).
const EnvNoAutostart = "MOAT_NO_AUTOSTART"

// daemonStartTimeout bounds the wait for an auto-started daemon.
const daemonStartTimeout = 20 * time.Second

func ping(ctx context.Context, c *api.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := c.Version(ctx)
	return err
}

// connect returns a client of a daemon that answers, starting one in the
// background when none does (unless autostart is false).
func (g *globals) connect(ctx context.Context, autostart bool) (*api.Client, error) {
	l, err := layout()
	if err != nil {
		return nil, err
	}
	sock := l.DaemonSocket()
	if g.socket != "" {
		sock = g.socket
	}
	c := api.NewClient(sock)
	if err := ping(ctx, c); err == nil {
		g.checkStale(ctx, c)
		return c, nil
	} else if g.socket != "" || !autostart || os.Getenv(EnvNoAutostart) != "" {
		if g.debug {
			return nil, fmt.Errorf("no moat daemon is running at %s: %v", sock, err)
		}
		return nil, fmt.Errorf("no moat daemon is running at %s", sock)
	}
	if err := l.EnsureHome(); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, daemonStartTimeout)
	defer cancel()
	lk, err := state.Acquire(lctx, l.DaemonStartLock())
	if err != nil {
		return nil, fmt.Errorf("waiting for another moat to start the daemon: %w", err)
	}
	defer lk.Unlock()
	if err := ping(ctx, c); err == nil {
		return c, nil
	}
	if g.debug {
		fmt.Fprintf(g.stderr, "moat: starting the daemon (log: %s)\n", l.DaemonLog())
	}
	// An installed service owns the daemon: ask its manager to start it
	// rather than starting a second, on-demand daemon beside it.
	exited := make(<-chan struct{})
	if started, serr := vmservice.StartInstalled(lctx, l); !started {
		if serr != nil {
			fmt.Fprintf(g.stderr, "moat: %v; starting the daemon on demand\n", serr)
		}
		if exited, err = spawnDaemon(l); err != nil {
			return nil, fmt.Errorf("start the moat daemon: %w", err)
		}
	}
	deadline := time.Now().Add(daemonStartTimeout)
	for {
		if err := ping(ctx, c); err == nil {
			return c, nil
		}
		select {
		case <-exited:
			if err := ping(ctx, c); err == nil {
				return c, nil
			}
			return nil, fmt.Errorf("the moat daemon exited at start:%s", logTail(l.DaemonLog()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the moat daemon did not answer on %s within %v; see %s", sock, daemonStartTimeout, l.DaemonLog())
		}
	}
}

// checkStale warns when the daemon runs a build of this very binary that
// has been replaced since it started (an upgrade or rebuild).
func (g *globals) checkStale(ctx context.Context, c *api.Client) {
	v, err := c.Version(ctx)
	if err != nil || v.Exe == "" {
		return
	}
	exe, err := os.Executable()
	if err != nil || exe != v.Exe {
		return
	}
	fi, err := os.Stat(exe)
	if err != nil || fi.ModTime().UTC().Equal(v.ExeModTime) {
		return
	}
	fmt.Fprintf(g.stderr, "moat: note: the daemon (pid %d) runs an older build of %s; restart it with `moat vmhost --stop` (running sandboxes keep running)\n", v.PID, exe)
}

func spawnDaemon(l *state.Layout) (<-chan struct{}, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(l.DaemonLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "vmhost")
	cmd.Env = append(daemonEnv(os.Environ()), state.EnvHome+"="+l.Home)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = daemon.Detached()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return done, nil
}

// daemonEnv keeps only what the daemon and its VMs need from the caller's
// environment: credentials (ANTHROPIC_API_KEY and the like) must reach an
// agent only inside an exec request, never a long-lived process's environ.
func daemonEnv(env []string) []string {
	keep := map[string]bool{
		"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "LANG": true, "TZ": true, "TMPDIR": true,
		"SHELL": true, "SYSTEMROOT": true, "WINDIR": true, "COMSPEC": true, "PATHEXT": true, "TEMP": true, "TMP": true,
		"USERPROFILE": true, "LOCALAPPDATA": true, "APPDATA": true, "PROGRAMDATA": true, "HOMEDRIVE": true, "HOMEPATH": true,
	}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		u := strings.ToUpper(k)
		if keep[u] || strings.HasPrefix(u, "MOAT_") || strings.HasPrefix(u, "XDG_") || strings.HasPrefix(u, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return " (no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

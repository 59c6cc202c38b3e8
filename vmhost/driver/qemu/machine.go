//go:build linux || darwin

package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moatsandbox/moat/vmhost/driver"
)

// ConsoleTailLines is how many console lines boot errors include.
const ConsoleTailLines = 20

type machine struct {
	spec   driver.Spec
	layout driver.Layout
	accel  string
	binary string
	args   []string

	pid  int
	done chan struct{}

	mu             sync.Mutex
	state          driver.State
	qmp            *qmpClient
	shutdownReason string // from the QMP SHUTDOWN event
	err            error  // valid after done
}

// spawn starts qemu from a goroutine locked to its OS thread, which stays
// alive until qemu exits: Pdeathsig fires when the forking thread dies, not
// the process, so a thread that ended early would kill the VM.
func (m *machine) spawn(cmd *exec.Cmd) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		m.pid = cmd.Process.Pid
		started <- nil
		m.exited(cmd.Wait())
	}()
	return <-started
}

// exited records why qemu ended and closes done.
func (m *machine) exited(waitErr error) {
	m.mu.Lock()
	q := m.qmp
	m.mu.Unlock()
	if q != nil {
		// Let the reader deliver the SHUTDOWN event before we judge.
		select {
		case <-q.Done():
		case <-time.After(time.Second):
		}
		q.Close()
	}
	err := exitError(waitErr)
	m.mu.Lock()
	if err == nil {
		switch m.shutdownReason {
		case "guest-reset":
			err = fmt.Errorf("the guest rebooted or its kernel panicked (qemu runs with -no-reboot)%s", m.consoleDetail())
		case "guest-panic":
			err = fmt.Errorf("the guest kernel panicked%s", m.consoleDetail())
		case "host-signal":
			if m.state != driver.StateStopping {
				err = errors.New("qemu was stopped by a signal from outside moat (SIGTERM, SIGINT or SIGHUP)")
			}
		}
	} else if m.state != driver.StateStopping {
		err = fmt.Errorf("%w%s%s", err, m.qemuLogDetail(), m.consoleDetail())
	}
	m.err = err
	m.state = driver.StateStopped
	m.mu.Unlock()
	close(m.done)
}

func (m *machine) onEvent(ev qmpEvent) {
	if ev.Event != "SHUTDOWN" {
		return
	}
	var data struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(ev.Data, &data)
	m.mu.Lock()
	m.shutdownReason = data.Reason
	m.mu.Unlock()
}

func (m *machine) qemuLogDetail() string {
	b, _ := os.ReadFile(filepath.Join(m.spec.RunDir, QEMULog))
	if t := lastLines(string(b), 10); t != "" {
		return "\nqemu said:\n  " + strings.ReplaceAll(t, "\n", "\n  ")
	}
	return ""
}

// consoleDetail is the console's tail for an error message. A kernel panic's
// own line is put first when the tail (usually a stack dump) lacks it.
func (m *machine) consoleDetail() string {
	t := driver.ConsoleTail(m.spec.ConsoleLog, ConsoleTailLines)
	if t == "" {
		return fmt.Sprintf("\nthe guest console (%s) is empty", m.spec.ConsoleLog)
	}
	if !strings.Contains(t, "Kernel panic") {
		long := strings.Split(driver.ConsoleTail(m.spec.ConsoleLog, 1000), "\n")
		for i := len(long) - 1; i >= 0; i-- {
			if strings.Contains(long[i], "Kernel panic") {
				t = long[i] + "\n  ...\n" + t
				break
			}
		}
	}
	return fmt.Sprintf("\nlast console lines (%s):\n  %s", m.spec.ConsoleLog, strings.ReplaceAll(t, "\n", "\n  "))
}

// waitReady connects QMP and waits for query-status to say running.
func (m *machine) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sock := filepath.Join(m.spec.RunDir, QMPSocket)
	var q *qmpClient
	var lastErr error
	for {
		select {
		case <-m.done:
			return m.bootFailure("start-up failed")
		default:
		}
		c, err := dialQMP(ctx, sock, m.onEvent)
		if err == nil {
			q = c
			break
		}
		lastErr = err
		select {
		case <-m.done:
			return m.bootFailure("start-up failed")
		case <-ctx.Done():
			return m.bootFailure(fmt.Sprintf("qemu did not answer on %s (%v; last error: %v)", sock, ctx.Err(), lastErr))
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.mu.Lock()
	m.qmp = q
	m.mu.Unlock()
	for {
		raw, err := q.Execute(ctx, "query-status", nil)
		if err != nil {
			select {
			case <-m.done:
				return m.bootFailure("start-up failed")
			default:
			}
			return m.bootFailure(fmt.Sprintf("qemu: query-status: %v", err))
		}
		var st struct {
			Running bool   `json:"running"`
			Status  string `json:"status"`
		}
		_ = json.Unmarshal(raw, &st)
		if st.Running {
			break
		}
		if st.Status != "prelaunch" && st.Status != "inmigrate" {
			return m.bootFailure(fmt.Sprintf("qemu reports status %q instead of running", st.Status))
		}
		select {
		case <-ctx.Done():
			return m.bootFailure(fmt.Sprintf("qemu stayed in status %q (%v)", st.Status, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.mu.Lock()
	if m.state == driver.StateStarting {
		m.state = driver.StateRunning
	}
	m.mu.Unlock()
	return nil
}

// bootFailure builds a start-up error carrying qemu's output, its command
// line and the console tail.
func (m *machine) bootFailure(what string) error {
	select {
	case <-m.done:
		m.mu.Lock()
		if m.err != nil {
			what += ": " + firstLine(m.err.Error())
		} else {
			what += ": qemu exited"
		}
		m.mu.Unlock()
	default:
	}
	return fmt.Errorf("qemu: %s%s\ncommand: %s %s%s", what, m.qemuLogDetail(), m.binary, strings.Join(m.args, " "), m.consoleDetail())
}

func (m *machine) Layout() driver.Layout { return m.layout }

// DialAgent connects to the agent socket, retrying until ctx ends. QEMU's
// chardev serves one connection at a time: a second dial succeeds but sees
// nothing until the first is closed.
func (m *machine) DialAgent(ctx context.Context) (net.Conn, error) {
	sock := filepath.Join(m.spec.RunDir, AgentSocket)
	var d net.Dialer
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("qemu: machine %s has stopped", m.spec.Name)
		default:
		}
		c, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("qemu: agent channel %s: %w (last error: %v)", sock, ctx.Err(), err)
		case <-m.done:
			return nil, fmt.Errorf("qemu: machine %s has stopped", m.spec.Name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// quitGrace is how long qemu gets to exit after QMP quit before a SIGKILL.
const quitGrace = 5 * time.Second

// Shutdown presses the ACPI power button and waits for the guest to power
// off until ctx ends; then it stops qemu with QMP quit (SIGKILL if that
// does not work either) and returns an error saying the guest was stopped
// hard. Err stays nil after a quit: the host asked for the stop.
func (m *machine) Shutdown(ctx context.Context) error {
	select {
	case <-m.done:
		return nil
	default:
	}
	m.mu.Lock()
	m.state = driver.StateStopping
	q := m.qmp
	m.mu.Unlock()
	if q != nil {
		if _, err := q.Execute(ctx, "system_powerdown", nil); err != nil && ctx.Err() == nil {
			select {
			case <-m.done:
				return nil
			default:
			}
		}
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
	}
	how := "QMP quit"
	if q != nil {
		qctx, cancel := context.WithTimeout(context.Background(), quitGrace)
		q.Execute(qctx, "quit", nil) // the reply may be lost as qemu exits
		cancel()
	}
	select {
	case <-m.done:
	case <-time.After(quitGrace):
		how = "SIGKILL"
		m.Kill()
		<-m.done
	}
	return fmt.Errorf("qemu: the guest did not power off in time (%v); stopped it with %s", ctx.Err(), how)
}

// Kill sends SIGKILL to qemu's process group and returns without waiting;
// Done closes when it has exited.
func (m *machine) Kill() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	if err := syscall.Kill(-m.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("qemu: kill %d: %w", m.pid, err)
	}
	return nil
}

func (m *machine) Done() <-chan struct{} { return m.done }

func (m *machine) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *machine) Info() driver.Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return driver.Info{Driver: "qemu", PID: m.pid, Accel: m.accel, State: m.state}
}

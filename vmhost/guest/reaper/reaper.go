//go:build linux

// Package reaper is the guest agent's single owner of wait4: it reaps every
// child (and, as PID 1, every orphan re-parented to it) and hands exit
// statuses to whoever started the process.
//
// Anything in the agent that starts a process must do so through Start, and
// must never call os.Process.Wait or exec.Cmd.Wait: those would race with the
// wait4(-1) loop here and steal (or lose) statuses. Start runs the fork under
// the reaper's lock, so a child that exits immediately is only reaped once its
// pid is registered. Statuses of pids nobody registered (orphans) are dropped.
//
// The same reaper works when the agent is not PID 1 (unit tests on the host):
// it then reaps the test process's own children.
package reaper

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Status is the result of a reaped process.
type Status struct {
	PID    int
	Status unix.WaitStatus
}

// Code returns the shell-style exit code: the exit status, or 128+signal when
// the process was killed by a signal (sig is then that signal, else 0).
func (s Status) Code() (code, sig int) {
	switch {
	case s.Status.Exited():
		return s.Status.ExitStatus(), 0
	case s.Status.Signaled():
		n := int(s.Status.Signal())
		return 128 + n, n
	}
	return 255, 0
}

// Reaper reaps children and dispatches statuses.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan Status
	sigc    chan os.Signal
	// Orphans counts reaped processes nobody was waiting for.
	orphans int
}

var (
	defaultOnce sync.Once
	defaultR    *Reaper
)

// Default returns the process-wide reaper, starting it on first use. There
// must be only one reaper per process.
func Default() *Reaper {
	defaultOnce.Do(func() { defaultR = newReaper() })
	return defaultR
}

func newReaper() *Reaper {
	r := &Reaper{waiters: map[int]chan Status{}, sigc: make(chan os.Signal, 16)}
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go r.loop()
	return r
}

func (r *Reaper) loop() {
	for range r.sigc {
		r.reap()
	}
}

// reap collects every exited child without blocking.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- Status{PID: pid, Status: ws}
			close(ch)
		} else {
			r.orphans++
		}
	}
}

// Start runs start (which must fork exactly one child and return its pid,
// e.g. via syscall.ForkExec) under the reaper's lock and registers the pid.
// The returned channel receives the child's status once, then is closed.
func (r *Reaper) Start(start func() (int, error)) (int, <-chan Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Status, 1)
	r.waiters[pid] = ch
	// A SIGCHLD may have arrived (and been coalesced) while we held the lock;
	// make sure the loop looks again.
	select {
	case r.sigc <- syscall.SIGCHLD:
	default:
	}
	return pid, ch, nil
}

// Orphans reports how many unregistered processes have been reaped.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Running reports how many registered children have not exited yet.
func (r *Reaper) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiters)
}

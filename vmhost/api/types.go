// Package api is the vmhost API: versioned HTTP/JSON over a unix socket
// (mode 0600, in the state directory), never TCP. Routes, all under /v1:
//
//	GET    /v1/version                      Version
//	GET    /v1/sandboxes                    []Sandbox
//	POST   /v1/sandboxes                    sandbox.Request -> CreateResult
//	GET    /v1/sandboxes/{name}             Sandbox
//	DELETE /v1/sandboxes/{name}[?force=1]   stop (kill with force) and remove
//	POST   /v1/sandboxes/{name}/start       newline-delimited Progress, last one final
//	POST   /v1/sandboxes/{name}/stop[?force=1] Sandbox
//	POST   /v1/sandboxes/{name}/exec        Upgrade: moat-exec/1; body ExecRequest
//	GET    /v1/sandboxes/{name}/logs        the guest console log (text)
//	GET    /v1/events                       newline-delimited Event, long-lived
//	POST   /v1/reset                        stop and remove everything
//	POST   /v1/shutdown                     the daemon exits (sandboxes keep running)
//
// Exec is an HTTP Upgrade: the request body (JSON, so environment values
// never appear in a URL or a process list) describes the process; after
// "101 Switching Protocols" the connection carries the frames of
// vmhost/protocol (stdin, stdin-eof, resize, signal from the client;
// stdout, stderr, then exit or error from the server). On unix the daemon
// hands the client's connection itself to the sandbox's supervisor
// (ExecHandoff), so a session outlives a daemon restart; otherwise it
// relays bytes to the same exchange on the supervisor's socket.
//
// Errors are JSON {"error": message, "code": code} with a matching status.
package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/moatsandbox/moat/vmhost/protocol"
	"github.com/moatsandbox/moat/vmhost/sandbox"
)

// Version of the API, in every path as /v1.
const Version = 1

// ExecUpgrade is the Upgrade token of an exec request.
const ExecUpgrade = "moat-exec/1"

// Status is derived from live processes, never stored.
type Status string

const (
	StatusStarting Status = "starting"
	StatusRunning  Status = "running"
	StatusStopping Status = "stopping"
	StatusStopped  Status = "stopped"
	StatusError    Status = "error"
)

// Sandbox is a sandbox as the API shows it.
type Sandbox struct {
	Name      string   `json:"name"`
	ID        string   `json:"id"`
	Agent     string   `json:"agent"`
	AgentArgs []string `json:"agent_args,omitempty"`
	Template  string   `json:"template"`
	// TemplateDigest is the template image's digest (its base disk in the
	// template store); empty for the guest assets' base.
	TemplateDigest string              `json:"template_digest,omitempty"`
	Workspaces     []sandbox.Workspace `json:"workspaces"`
	CPUs           int                 `json:"cpus,omitempty"`
	MemoryMiB      int                 `json:"memory_mib,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	Status         Status              `json:"status"`
	// Reason says why Status is error (or, while starting, the phase).
	Reason string `json:"reason,omitempty"`
	// Runtime is present while a supervisor runs.
	Runtime *Runtime `json:"runtime,omitempty"`
	Paths   Paths    `json:"paths"`
}

// Workspace returns the primary workspace.
func (s *Sandbox) Workspace() string {
	if len(s.Workspaces) == 0 {
		return ""
	}
	return s.Workspaces[0].Path
}

// Runtime describes a live sandbox.
type Runtime struct {
	SupervisorPID int       `json:"supervisor_pid"`
	Driver        string    `json:"driver,omitempty"`
	VMPID         int       `json:"vm_pid,omitempty"`
	Accel         string    `json:"accel,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	BootMS        int64     `json:"boot_ms,omitempty"`
	Kernel        string    `json:"kernel,omitempty"`
	AgentVersion  string    `json:"agent_version,omitempty"`
	Phase         string    `json:"phase,omitempty"`
}

// Paths are a sandbox's files on the host.
type Paths struct {
	Dir        string `json:"dir"`
	DataDisk   string `json:"data_disk"`
	ConsoleLog string `json:"console_log"`
	RunDir     string `json:"run_dir"`
}

// CreateResult answers POST /v1/sandboxes.
type CreateResult struct {
	Sandbox Sandbox `json:"sandbox"`
	Created bool    `json:"created"`
}

// Progress is one line of a start stream. The last line has Done set, with
// either Status running or Error.
type Progress struct {
	Phase  string `json:"phase,omitempty"`
	Done   bool   `json:"done,omitempty"`
	Status Status `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
}

// Event is one status change on the events stream.
type Event struct {
	Time    time.Time `json:"time"`
	Name    string    `json:"name"`
	Status  Status    `json:"status,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Removed bool      `json:"removed,omitempty"`
}

// VersionInfo answers GET /v1/version.
type VersionInfo struct {
	API     int    `json:"api"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Exe is the daemon's binary and ExeModTime its modification time when
	// the daemon started: a client can tell the binary was replaced since.
	Exe        string    `json:"exe,omitempty"`
	ExeModTime time.Time `json:"exe_mod_time,omitempty"`
	StartedAt  time.Time `json:"started_at"`
}

// ResetResult answers POST /v1/reset.
type ResetResult struct {
	Removed []string `json:"removed"`
}

// ExecRequest is the body of an exec upgrade.
type ExecRequest = protocol.ExecRequest

// Error codes.
const (
	CodeNotFound   = "not_found"
	CodeExists     = "exists"
	CodeConflict   = "conflict"
	CodeNotRunning = "not_running"
	CodeInvalid    = "invalid"
	CodeUnreadable = "unreadable"
	CodeInternal   = "internal"
)

// ErrNotRunning is returned for operations that need a running sandbox.
var ErrNotRunning = errors.New("sandbox is not running")

// Error is an API error as the client sees it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Is maps codes back to the sentinel errors callers test with errors.Is.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeNotFound:
		return target == sandbox.ErrNotFound
	case CodeExists:
		return target == sandbox.ErrExists
	case CodeConflict:
		return target == sandbox.ErrConflict
	case CodeNotRunning:
		return target == ErrNotRunning
	case CodeUnreadable:
		return target == sandbox.ErrUnreadable
	}
	return false
}

// codeOf classifies a server-side error.
func codeOf(err error) (string, int) {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae.Code, statusOfCode(ae.Code)
	case errors.Is(err, sandbox.ErrNotFound):
		return CodeNotFound, 404
	case errors.Is(err, sandbox.ErrExists):
		return CodeExists, 409
	case errors.Is(err, sandbox.ErrConflict):
		return CodeConflict, 409
	case errors.Is(err, ErrNotRunning):
		return CodeNotRunning, 409
	case errors.Is(err, sandbox.ErrUnreadable):
		return CodeUnreadable, 500
	case errors.Is(err, ErrInvalid):
		return CodeInvalid, 400
	}
	return CodeInternal, 500
}

func statusOfCode(c string) int {
	switch c {
	case CodeNotFound:
		return 404
	case CodeExists, CodeConflict, CodeNotRunning:
		return 409
	case CodeInvalid:
		return 400
	}
	return 500
}

// ErrInvalid marks bad input from the client.
var ErrInvalid = errors.New("invalid request")

// Invalid wraps a message as a bad-input error (HTTP 400) without adding to it.
func Invalid(err error) error { return &Error{Code: CodeInvalid, Message: err.Error()} }

// Errorf is a convenience for coded errors.
func Errorf(code, format string, a ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

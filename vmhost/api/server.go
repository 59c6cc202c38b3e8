package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"io"
	"net/http"
	"sync"

	"github.com/moatsandbox/moat/vmhost/sandbox"
)

// Service is what the API serves; the daemon implements it.
type Service interface {
	Version() VersionInfo
	List(ctx context.Context) ([]Sandbox, error)
	Get(ctx context.Context, name string) (*Sandbox, error)
	Create(ctx context.Context, req sandbox.Request) (*CreateResult, error)
	Remove(ctx context.Context, name string, force bool) error
	// Start starts the sandbox and returns once it runs, reporting phases.
	Start(ctx context.Context, name string, progress func(phase string)) error
	Stop(ctx context.Context, name string, force bool) (*Sandbox, error)
	// Exec returns an upgraded connection to the process's supervisor.
	Exec(ctx context.Context, name string, req ExecRequest) (io.ReadWriteCloser, error)
	// Logs returns the console log; with follow it keeps reading new output
	// until ctx ends or the sandbox stops.
	Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error)
	// Subscribe returns the current state as events, then changes, until
	// ctx ends.
	Subscribe(ctx context.Context) ([]Event, <-chan Event)
	Reset(ctx context.Context) (*ResetResult, error)
	// Shutdown makes the daemon exit after answering; supervisors and their
	// sandboxes keep running.
	Shutdown()
}

// ExecHandoff is implemented by a Service that can give the client's
// connection to the process running the session (the sandbox's
// supervisor), so that the session outlives the daemon. HandOff validates
// first and calls hijack only once it can hand off; it returns handled=false
// with a nil error to ask for the relay instead (after hijack or not).
type ExecHandoff interface {
	HandOff(ctx context.Context, name string, req ExecRequest, hijack func() (net.Conn, error)) (handled bool, err error)
}

var errBuffered = errors.New("client sent data before the upgrade")

// NewHandler routes /v1 to svc.
func NewHandler(svc Service) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, svc.Version())
	})
	mux.HandleFunc("GET /v1/sandboxes", func(w http.ResponseWriter, r *http.Request) {
		l, err := svc.List(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		if l == nil {
			l = []Sandbox{}
		}
		WriteJSON(w, l)
	})
	mux.HandleFunc("POST /v1/sandboxes", func(w http.ResponseWriter, r *http.Request) {
		var req sandbox.Request
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			WriteError(w, Errorf(CodeInvalid, "bad request body: %v", err))
			return
		}
		res, err := svc.Create(r.Context(), req)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, res)
	})
	mux.HandleFunc("GET /v1/sandboxes/{name}", func(w http.ResponseWriter, r *http.Request) {
		s, err := svc.Get(r.Context(), r.PathValue("name"))
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, s)
	})
	mux.HandleFunc("DELETE /v1/sandboxes/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := svc.Remove(r.Context(), r.PathValue("name"), r.URL.Query().Get("force") == "1"); err != nil {
			WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /v1/sandboxes/{name}/start", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		var mu sync.Mutex
		enc := json.NewEncoder(w)
		send := func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			enc.Encode(p)
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		err := svc.Start(r.Context(), r.PathValue("name"), func(phase string) { send(Progress{Phase: phase}) })
		if err != nil {
			code, _ := codeOf(err)
			send(Progress{Done: true, Error: err.Error(), Code: code})
			return
		}
		send(Progress{Done: true, Status: StatusRunning})
	})
	mux.HandleFunc("POST /v1/sandboxes/{name}/stop", func(w http.ResponseWriter, r *http.Request) {
		s, err := svc.Stop(r.Context(), r.PathValue("name"), r.URL.Query().Get("force") == "1")
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, s)
	})
	mux.HandleFunc("POST /v1/sandboxes/{name}/exec", func(w http.ResponseWriter, r *http.Request) {
		var req ExecRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			WriteError(w, Errorf(CodeInvalid, "bad exec request: %v", err))
			return
		}
		if len(req.Argv) == 0 {
			WriteError(w, Errorf(CodeInvalid, "exec: no command given"))
			return
		}
		name := r.PathValue("name")
		ctx := context.WithoutCancel(r.Context())
		if !strings.EqualFold(r.Header.Get("Upgrade"), ExecUpgrade) {
			WriteError(w, Errorf(CodeInvalid, "exec needs Upgrade: %s", ExecUpgrade))
			return
		}
		var hc net.Conn
		var hbr *bufio.Reader
		if ho, ok := svc.(ExecHandoff); ok {
			hijack := func() (net.Conn, error) {
				hj, ok := w.(http.Hijacker)
				if !ok {
					return nil, fmt.Errorf("connection cannot be upgraded")
				}
				nc, brw, err := hj.Hijack()
				if err != nil {
					return nil, err
				}
				hc, hbr = nc, brw.Reader
				if hbr.Buffered() > 0 {
					return nil, errBuffered
				}
				return nc, nil
			}
			handled, err := ho.HandOff(ctx, name, req, hijack)
			switch {
			case handled:
				if hc != nil {
					hc.Close()
				}
				return
			case err != nil && hc != nil:
				WriteRawError(hc, err)
				hc.Close()
				return
			case err != nil:
				WriteError(w, err)
				return
			}
		}
		// Relay: this process stays in the path of the session.
		up, err := svc.Exec(ctx, name, req)
		if err != nil {
			if hc != nil {
				WriteRawError(hc, err)
				hc.Close()
				return
			}
			WriteError(w, err)
			return
		}
		var down *Conn
		if hc != nil {
			if err := WriteSwitching(hc); err != nil {
				hc.Close()
				up.Close()
				return
			}
			down = &Conn{Conn: hc, r: hbr}
		} else if down, err = Accept(w, r); err != nil {
			up.Close()
			WriteError(w, err)
			return
		}
		Splice(down, up)
	})
	mux.HandleFunc("GET /v1/sandboxes/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		follow := r.URL.Query().Get("follow") == "1"
		rc, err := svc.Logs(r.Context(), r.PathValue("name"), follow)
		if err != nil {
			WriteError(w, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !follow {
			io.Copy(w, rc)
			return
		}
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 32<<10)
		for {
			n, err := rc.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		snap, ch := svc.Subscribe(r.Context())
		for _, e := range snap {
			enc.Encode(e)
		}
		flush()
		for e := range ch {
			if enc.Encode(e) != nil {
				return
			}
			flush()
		}
	})
	mux.HandleFunc("POST /v1/reset", func(w http.ResponseWriter, r *http.Request) {
		res, err := svc.Reset(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, res)
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		svc.Shutdown()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, Errorf(CodeNotFound, "no API route %s %s (this daemon speaks /v%d)", r.Method, r.URL.Path, Version))
	})
	return mux
}

// Splice copies bytes both ways until either side ends, then closes both.
func Splice(a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	cp := func(dst, src io.ReadWriteCloser) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}

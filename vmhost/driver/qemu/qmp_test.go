//go:build linux || darwin

package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQMP serves QMP on a unix socket: a greeting, then answers every
// command via handle, emitting an event before each answer.
type fakeQMP struct {
	t      *testing.T
	path   string
	ln     net.Listener
	mu     sync.Mutex
	seen   []string
	handle func(cmd string, args json.RawMessage) (ret any, errClass string)
}

func newFakeQMP(t *testing.T, handle func(string, json.RawMessage) (any, string)) *fakeQMP {
	t.Helper()
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeQMP{t: t, path: filepath.Join(dir, "q.sock"), handle: handle}
	f.ln, err = net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.ln.Close() })
	go f.serve()
	return f
}

func (f *fakeQMP) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			w := bufio.NewWriter(c)
			w.WriteString(`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}` + "\r\n")
			w.Flush()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				var req struct {
					Execute   string          `json:"execute"`
					Arguments json.RawMessage `json:"arguments"`
					ID        json.RawMessage `json:"id"`
				}
				if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
					f.t.Errorf("fake qmp: bad request %q", sc.Text())
					return
				}
				f.mu.Lock()
				f.seen = append(f.seen, req.Execute)
				f.mu.Unlock()
				// An event arrives before the answer, as QEMU may do.
				w.WriteString(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}` + "\r\n")
				ret, class := f.handle(req.Execute, req.Arguments)
				if ret == "hangup" {
					w.Flush()
					return
				}
				if ret == "silent" {
					w.Flush()
					continue
				}
				var resp map[string]any
				if class != "" {
					resp = map[string]any{"error": map[string]string{"class": class, "desc": "it failed"}, "id": req.ID}
				} else {
					resp = map[string]any{"return": ret, "id": req.ID}
				}
				b, _ := json.Marshal(resp)
				w.Write(append(b, '\r', '\n'))
				w.Flush()
			}
			_ = sc.Err() // the client hung up: the test decides what that means
		}(c)
	}
}

func shortTempDir(t *testing.T) (string, error) {
	// t.TempDir paths can exceed the unix socket limit.
	dir, err := mkdirTemp("/tmp", "qmpt")
	if err == nil {
		t.Cleanup(func() { removeAll(dir) })
	}
	return dir, err
}

func TestQMPClient(t *testing.T) {
	f := newFakeQMP(t, func(cmd string, args json.RawMessage) (any, string) {
		switch cmd {
		case "qmp_capabilities":
			return map[string]any{}, ""
		case "query-status":
			return map[string]any{"status": "running", "running": true}, ""
		case "echo":
			var v any
			json.Unmarshal(args, &v)
			return v, ""
		case "slow":
			return "silent", ""
		}
		return nil, "CommandNotFound"
	})
	var evMu sync.Mutex
	var events []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialQMP(ctx, f.path, func(e qmpEvent) { evMu.Lock(); events = append(events, e.Event); evMu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.Contains(string(c.Version), `"major": 7`) {
		t.Errorf("version %s", c.Version)
	}
	raw, err := c.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(raw), `"running":true`) {
		t.Fatalf("query-status: %s %v", raw, err)
	}
	// Concurrent commands get their own answers.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			raw, err := c.Execute(ctx, "echo", map[string]int{"n": i})
			var got struct{ N int }
			if err != nil || json.Unmarshal(raw, &got) != nil || got.N != i {
				t.Errorf("echo %d: %s %v", i, raw, err)
			}
		}(i)
	}
	wg.Wait()
	_, err = c.Execute(ctx, "nope", nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || !strings.Contains(err.Error(), "qmp nope: CommandNotFound: it failed") {
		t.Errorf("error answer: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Execute(sctx, "slow", nil)
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow: %v", err)
	}
	// Still usable afterwards.
	if _, err := c.Execute(ctx, "query-status", nil); err != nil {
		t.Error(err)
	}
	evMu.Lock()
	if len(events) < 20 || events[0] != "RTC_CHANGE" {
		t.Errorf("events: %v", events)
	}
	evMu.Unlock()
}

func TestQMPHangup(t *testing.T) {
	f := newFakeQMP(t, func(cmd string, _ json.RawMessage) (any, string) {
		if cmd == "quit" {
			return "hangup", ""
		}
		return map[string]any{}, ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialQMP(ctx, f.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Execute(ctx, "quit", nil); !errors.Is(err, errQMPClosed) {
		t.Errorf("quit: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done not closed")
	}
	if _, err := c.Execute(ctx, "query-status", nil); !errors.Is(err, errQMPClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestQMPBadGreeting(t *testing.T) {
	dir, _ := shortTempDir(t)
	p := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hello\n"))
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := dialQMP(ctx, p, nil); err == nil || !strings.Contains(err.Error(), "bad greeting") {
		t.Errorf("got %v", err)
	}
	// A server that never greets: ctx ends the wait.
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if _, err := dialQMP(sctx, p, nil); err == nil || !strings.Contains(err.Error(), "no greeting") {
		t.Errorf("got %v", err)
	}
}

var (
	mkdirTemp = os.MkdirTemp
	removeAll = os.RemoveAll
)

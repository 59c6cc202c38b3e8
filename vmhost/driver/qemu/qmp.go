//go:build linux || darwin

package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// qmpEvent is an asynchronous QMP event.
type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// QMPError is an error answer to a QMP command.
type QMPError struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// errQMPClosed is returned for commands pending when the connection ends.
var errQMPClosed = errors.New("qmp: connection closed")

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
}

// qmpClient speaks QMP (JSON objects, one per line) over one connection.
// Commands may be issued from several goroutines; answers are matched by id.
// Events go to onEvent (called from the reader goroutine; it must not block).
type qmpClient struct {
	conn    net.Conn
	onEvent func(qmpEvent)
	Version json.RawMessage // greeting's QMP.version

	wmu     sync.Mutex // serializes writes
	mu      sync.Mutex
	nextID  int
	pending map[string]chan qmpReply
	closed  error
	done    chan struct{}
}

// dialQMP connects to a QMP unix socket, reads the greeting and leaves
// negotiation mode with qmp_capabilities.
func dialQMP(ctx context.Context, path string, onEvent func(qmpEvent)) (*qmpClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return newQMP(ctx, conn, onEvent)
}

func newQMP(ctx context.Context, conn net.Conn, onEvent func(qmpEvent)) (*qmpClient, error) {
	c := &qmpClient{conn: conn, onEvent: onEvent, pending: map[string]chan qmpReply{}, done: make(chan struct{})}
	r := bufio.NewReaderSize(conn, 64<<10)
	// The greeting.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	line, err := r.ReadBytes('\n')
	stop()
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("qmp: no greeting: %w", ctx.Err())
		}
		return nil, fmt.Errorf("qmp: no greeting: %w", err)
	}
	var greet struct {
		QMP *struct {
			Version json.RawMessage `json:"version"`
		} `json:"QMP"`
	}
	if err := json.Unmarshal(line, &greet); err != nil || greet.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: bad greeting %q", truncate(string(line), 200))
	}
	c.Version = greet.QMP.Version
	go c.read(r)
	if _, err := c.Execute(ctx, "qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (c *qmpClient) read(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if len(line) > 0 {
			var msg struct {
				qmpReply
				qmpEvent
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(line, &msg) == nil {
				switch {
				case msg.Event != "":
					if c.onEvent != nil {
						c.onEvent(msg.qmpEvent)
					}
				case msg.ID != nil:
					var id string
					if json.Unmarshal(msg.ID, &id) == nil {
						c.mu.Lock()
						ch := c.pending[id]
						delete(c.pending, id)
						c.mu.Unlock()
						if ch != nil {
							ch <- msg.qmpReply
						}
					}
				}
			}
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.closed = errQMPClosed
	for id, ch := range c.pending {
		delete(c.pending, id)
		close(ch)
	}
	c.mu.Unlock()
	close(c.done)
}

// Execute runs one command and returns its "return" value.
func (c *qmpClient) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return nil, c.closed
	}
	c.nextID++
	id := "moat-" + strconv.Itoa(c.nextID)
	ch := make(chan qmpReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	c.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(dl)
	}
	_, err := c.conn.Write(append(b, '\n'))
	c.conn.SetWriteDeadline(time.Time{})
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("qmp %s: %w", command, errQMPClosed)
		}
		if rep.Error != nil {
			rep.Error.Command = command
			return nil, rep.Error
		}
		return rep.Return, nil
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (c *qmpClient) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// Done is closed when the connection has ended.
func (c *qmpClient) Done() <-chan struct{} { return c.done }

// Close ends the connection.
func (c *qmpClient) Close() error { return c.conn.Close() }

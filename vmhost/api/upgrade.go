package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Conn is an upgraded connection: reads come through the buffered reader
// that may already hold the peer's first bytes.
type Conn struct {
	net.Conn
	r io.Reader
}

func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes when the transport supports it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Accept completes an exec upgrade on the server side: it answers 101 and
// returns the raw connection. Call it after reading the request body.
func Accept(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), ExecUpgrade) {
		return nil, Errorf(CodeInvalid, "exec needs Upgrade: %s", ExecUpgrade)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, fmt.Errorf("connection cannot be upgraded")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	if err := WriteSwitching(nc); err != nil {
		nc.Close()
		return nil, err
	}
	return &Conn{Conn: nc, r: brw.Reader}, nil
}

// WriteSwitching writes the 101 answer of an exec upgrade.
func WriteSwitching(w io.Writer) error {
	_, err := io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+ExecUpgrade+"\r\n\r\n")
	return err
}

// NewConn wraps a raw connection whose peer has sent nothing unread.
func NewConn(nc net.Conn) *Conn { return &Conn{Conn: nc, r: nc} }

// WriteRawError answers on a hijacked connection with an error response.
func WriteRawError(w io.Writer, err error) {
	code, status := codeOf(err)
	b, _ := json.Marshal(Error{Code: code, Message: err.Error()})
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, http.StatusText(status), len(b), b)
}

// DialUpgrade sends an exec upgrade with body to a unix socket and returns
// the upgraded connection, or the server's error.
func DialUpgrade(ctx context.Context, socket, path string, body any) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(body)
	if err != nil {
		nc.Close()
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://moat"+path, bytes.NewReader(b))
	if err != nil {
		nc.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ExecUpgrade)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer nc.Close()
		return nil, readError(resp)
	}
	return &Conn{Conn: nc, r: br}, nil
}

func readError(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		if e.Code == "" {
			e.Code = CodeInternal
		}
		return &e
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Code: CodeInternal, Message: msg}
}

// WriteError writes err as a JSON error response.
func WriteError(w http.ResponseWriter, err error) {
	code, status := codeOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Error{Code: code, Message: err.Error()})
}

// WriteJSON writes v with status 200.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

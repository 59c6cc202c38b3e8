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
	"net/url"
	"time"

	"github.com/moatsandbox/moat/vmhost/sandbox"
)

// Client is the Go client of the vmhost API; the CLI uses only this.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the daemon socket at path.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.open(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("bad answer from the moat daemon: %w", err)
	}
	return nil
}

// open sends one request and returns the response of a successful status;
// transport failures and daemon errors become errors that say which.
func (c *Client) open(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://moat"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the moat daemon at %s: %w", c.Socket, err)
	}
	if resp.StatusCode >= 300 {
		return nil, readError(resp)
	}
	return resp, nil
}

func sbPath(name string, rest string) string {
	return "/v1/sandboxes/" + url.PathEscape(name) + rest
}

// Ping checks that a daemon answers.
func (c *Client) Version(ctx context.Context) (*VersionInfo, error) {
	var v VersionInfo
	return &v, c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
}

func (c *Client) List(ctx context.Context) ([]Sandbox, error) {
	var l []Sandbox
	return l, c.do(ctx, http.MethodGet, "/v1/sandboxes", nil, &l)
}

func (c *Client) Get(ctx context.Context, name string) (*Sandbox, error) {
	var s Sandbox
	if err := c.do(ctx, http.MethodGet, sbPath(name, ""), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) Create(ctx context.Context, req sandbox.Request) (*CreateResult, error) {
	var r CreateResult
	if err := c.do(ctx, http.MethodPost, "/v1/sandboxes", req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (c *Client) Remove(ctx context.Context, name string, force bool) error {
	q := ""
	if force {
		q = "?force=1"
	}
	return c.do(ctx, http.MethodDelete, sbPath(name, q), nil, nil)
}

func (c *Client) Stop(ctx context.Context, name string, force bool) (*Sandbox, error) {
	q := ""
	if force {
		q = "?force=1"
	}
	var s Sandbox
	if err := c.do(ctx, http.MethodPost, sbPath(name, "/stop"+q), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (c *Client) Reset(ctx context.Context) (*ResetResult, error) {
	var r ResetResult
	if err := c.do(ctx, http.MethodPost, "/v1/reset", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Shutdown asks the daemon to exit; running sandboxes keep running.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/shutdown", nil, nil)
}

// Start starts a sandbox and waits until it runs, calling progress with
// each boot phase.
func (c *Client) Start(ctx context.Context, name string, progress func(phase string)) error {
	resp, err := c.open(ctx, http.MethodPost, sbPath(name, "/start"), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var p Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return fmt.Errorf("bad progress from the moat daemon: %w", err)
		}
		if p.Done {
			if p.Error != "" {
				return &Error{Code: p.Code, Message: p.Error}
			}
			return nil
		}
		if progress != nil && p.Phase != "" {
			progress(p.Phase)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lost the moat daemon while starting %s: %w", name, err)
	}
	return fmt.Errorf("the moat daemon ended the start of %s without a result", name)
}

// Exec opens an exec stream: the returned connection speaks protocol frames.
func (c *Client) Exec(ctx context.Context, name string, req ExecRequest) (*Conn, error) {
	conn, err := DialUpgrade(ctx, c.Socket, sbPath(name, "/exec"), req)
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, fmt.Errorf("cannot reach the moat daemon at %s: %w", c.Socket, err)
	}
	return conn, nil
}

// Logs returns the console log; with follow it streams new output until
// the sandbox stops or ctx ends.
func (c *Client) Logs(ctx context.Context, name string, follow bool) (io.ReadCloser, error) {
	q := ""
	if follow {
		q = "?follow=1"
	}
	resp, err := c.open(ctx, http.MethodGet, sbPath(name, "/logs"+q), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Events calls fn for every event until ctx ends or fn returns false.
func (c *Client) Events(ctx context.Context, fn func(Event) bool) error {
	resp, err := c.open(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var e Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !fn(e) {
			return nil
		}
	}
}

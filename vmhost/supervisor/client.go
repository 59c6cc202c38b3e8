package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/moatsandbox/moat/vmhost/api"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// Client talks to one supervisor's socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the supervisor socket at path.
func NewClient(socket string) *Client {
	return &Client{Socket: socket, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}}
}

// Status asks the supervisor how its VM is; an error means it does not answer.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://sup/status", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("supervisor status: %s", resp.Status)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Stop asks the supervisor to stop its VM (kill with force); it returns
// at once, the supervisor exits when the VM is gone.
func (c *Client) Stop(ctx context.Context, force bool) error {
	u := "http://sup/stop"
	if force {
		u += "?force=1"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Exec opens an exec upgrade to the supervisor.
func (c *Client) Exec(ctx context.Context, req protocol.ExecRequest) (*api.Conn, error) {
	return api.DialUpgrade(ctx, c.Socket, "/exec", req)
}

package supervisor

import (
	"context"
	"net"

	"github.com/moatsandbox/moat/vmhost/protocol"
)

// No descriptor passing on Windows: the daemon relays exec sessions.
func (s *sup) listenHandoff(string) (func(), error) { return func() {}, nil }

// HandOff is not available on Windows; the caller relays.
func HandOff(context.Context, string, net.Conn, protocol.ExecRequest) (bool, error) {
	return false, nil
}

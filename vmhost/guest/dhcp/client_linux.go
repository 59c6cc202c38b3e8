//go:build linux

package dhcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// conn sends and receives IPv4 packets on one interface, below IP (so it
// works before the interface has an address).
type conn struct {
	fd  int
	ifi *net.Interface
}

func open(iface string) (*conn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s has no Ethernet address", iface)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", iface, err)
	}
	return &conn{fd: fd, ifi: ifi}, nil
}

func (c *conn) close() { unix.Close(c.fd) }

func (c *conn) send(src netip.Addr, m *Message) error {
	p := udpPacket(src, broadcast, ClientPort, ServerPort, m.Marshal())
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: c.ifi.Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return unix.Sendto(c.fd, p, 0, to)
}

// receive waits until deadline for a reply to xid of one of the types.
func (c *conn) receive(ctx context.Context, xid uint32, deadline time.Time, types ...byte) (*Message, error) {
	buf := make([]byte, 2048)
	for {
		wait := time.Until(deadline)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			wait = time.Until(d)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wait <= 0 {
			return nil, errTimeout
		}
		ms := int(wait / time.Millisecond)
		if ms > 200 {
			ms = 200 // wake up to notice ctx
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return nil, err
		}
		if n <= 0 {
			continue
		}
		r, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, err
		}
		payload, err := udpPayload(buf[:r], ClientPort)
		if err != nil {
			continue
		}
		m, err := Parse(payload)
		if err != nil || m.Op != opReply || m.XID != xid || !bytes.Equal(m.CHAddr, c.ifi.HardwareAddr) {
			continue
		}
		for _, t := range types {
			if m.Type == t {
				return m, nil
			}
		}
	}
}

var errTimeout = errors.New("no answer")

func newXID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Acquire obtains a lease for iface (which must be up) by DISCOVER, OFFER,
// REQUEST, ACK, retrying with backoff (1 s, 2 s, 4 s...) until ctx ends.
func Acquire(ctx context.Context, iface, hostname string) (*Lease, error) {
	c, err := open(iface)
	if err != nil {
		return nil, err
	}
	defer c.close()
	mac := c.ifi.HardwareAddr
	wait := time.Second
	var last error = errTimeout
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dhcp on %s: %v after %d attempts", iface, last, attempt)
		}
		xid := newXID()
		if err := c.send(netip.IPv4Unspecified(), DiscoverMessage(xid, mac, hostname)); err != nil {
			return nil, fmt.Errorf("dhcp on %s: send: %w", iface, err)
		}
		offer, err := c.receive(ctx, xid, time.Now().Add(wait), Offer)
		if err == nil {
			ol, lerr := offer.Lease()
			if lerr != nil {
				last = lerr
			} else {
				req := RequestMessage(xid, mac, hostname, ol.Address.Addr(), ol.Server, netip.Addr{})
				if err := c.send(netip.IPv4Unspecified(), req); err != nil {
					return nil, fmt.Errorf("dhcp on %s: send: %w", iface, err)
				}
				ack, err := c.receive(ctx, xid, time.Now().Add(wait), Ack, Nak)
				switch {
				case err != nil:
					last = fmt.Errorf("no ACK for %s: %v", ol.Address.Addr(), err)
				case ack.Type == Nak:
					last = fmt.Errorf("the server refused %s (NAK)", ol.Address.Addr())
				default:
					return ack.Lease()
				}
			}
		} else {
			last = fmt.Errorf("no offer: %v", err)
		}
		if wait < 8*time.Second {
			wait *= 2
		}
	}
}

// Renew asks the server to extend l (REQUEST from the leased address,
// broadcast, which both renewing and rebinding servers answer). A NAK means
// the address is gone: call Acquire again.
func Renew(ctx context.Context, iface, hostname string, l *Lease) (*Lease, error) {
	c, err := open(iface)
	if err != nil {
		return nil, err
	}
	defer c.close()
	xid := newXID()
	addr := l.Address.Addr()
	if err := c.send(addr, RequestMessage(xid, c.ifi.HardwareAddr, hostname, addr, netip.Addr{}, addr)); err != nil {
		return nil, err
	}
	m, err := c.receive(ctx, xid, time.Now().Add(5*time.Second), Ack, Nak)
	if err != nil {
		return nil, fmt.Errorf("renew %s: %w", addr, err)
	}
	if m.Type == Nak {
		return nil, fmt.Errorf("renew %s: the server refused it (NAK)", addr)
	}
	return m.Lease()
}

// Package dhcp is the guest's DHCPv4 client, for hypervisors whose network
// hands out addresses by DHCP instead of a fixed one the host can announce
// (Apple's vmnet NAT under Virtualization.framework). It speaks just what a
// VM on a NAT needs: DISCOVER, OFFER, REQUEST, ACK/NAK, renewal at T1, with
// the subnet mask, router, DNS servers and lease time options.
//
// The message and packet code here is pure and unit-tested; the Linux
// client (client_linux.go) sends and receives whole IPv4/UDP packets on an
// AF_PACKET socket, because an interface without an address cannot use an
// ordinary UDP socket reliably.
package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Message types (option 53).
const (
	Discover byte = 1
	Offer    byte = 2
	Request  byte = 3
	Decline  byte = 4
	Ack      byte = 5
	Nak      byte = 6
	Release  byte = 7
)

// Option codes used here.
const (
	optPad         = 0
	optSubnetMask  = 1
	optRouter      = 3
	optDNS         = 6
	optHostname    = 12
	optRequestedIP = 50
	optLeaseTime   = 51
	optMessageType = 53
	optServerID    = 54
	optParamList   = 55
	optRenewalT1   = 58
	optClientID    = 61
	optEnd         = 255
)

var magicCookie = [4]byte{99, 130, 83, 99}

const (
	opRequest  = 1
	opReply    = 2
	flagBcast  = 0x8000
	headerSize = 236
)

// Message is a DHCP message, the fields this client uses.
type Message struct {
	Op      byte
	XID     uint32
	Flags   uint16
	CIAddr  netip.Addr // client's current address (renewal)
	YIAddr  netip.Addr // "your" address: what the server offers
	SIAddr  netip.Addr
	CHAddr  net.HardwareAddr
	Type    byte
	Options map[byte][]byte
}

// Lease is what an ACK grants.
type Lease struct {
	Address  netip.Prefix // e.g. 192.168.64.5/24
	Router   netip.Addr   // invalid when none was given
	DNS      []netip.Addr
	Server   netip.Addr // server identifier
	Duration time.Duration
	RenewAt  time.Duration // T1, from the lease start
}

func addr4(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b)
	return a.Unmap()
}

func put4(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	}
}

// Marshal encodes a client message (op BOOTREQUEST, broadcast flag set so
// replies reach an interface without an address).
func (m *Message) Marshal() []byte {
	b := make([]byte, headerSize, 300)
	b[0] = m.Op
	b[1] = 1 // htype: Ethernet
	b[2] = 6 // hlen
	binary.BigEndian.PutUint32(b[4:8], m.XID)
	binary.BigEndian.PutUint16(b[10:12], m.Flags)
	put4(b[12:16], m.CIAddr)
	put4(b[16:20], m.YIAddr)
	put4(b[20:24], m.SIAddr)
	copy(b[28:44], m.CHAddr)
	b = append(b, magicCookie[:]...)
	b = append(b, optMessageType, 1, m.Type)
	// Deterministic order: the ones that matter to servers first.
	for _, code := range []byte{optClientID, optRequestedIP, optServerID, optHostname, optParamList} {
		if v, ok := m.Options[code]; ok {
			b = append(b, code, byte(len(v)))
			b = append(b, v...)
		}
	}
	b = append(b, optEnd)
	for len(b) < 300 { // BOOTP minimum; some servers drop shorter messages
		b = append(b, optPad)
	}
	return b
}

// Parse decodes a DHCP message.
func Parse(b []byte) (*Message, error) {
	if len(b) < headerSize+4 {
		return nil, errors.New("dhcp: message too short")
	}
	if [4]byte(b[headerSize:headerSize+4]) != magicCookie {
		return nil, errors.New("dhcp: no magic cookie")
	}
	hlen := int(b[2])
	if hlen > 16 {
		return nil, errors.New("dhcp: bad hardware address length")
	}
	m := &Message{
		Op:      b[0],
		XID:     binary.BigEndian.Uint32(b[4:8]),
		Flags:   binary.BigEndian.Uint16(b[10:12]),
		CIAddr:  addr4(b[12:16]),
		YIAddr:  addr4(b[16:20]),
		SIAddr:  addr4(b[20:24]),
		CHAddr:  net.HardwareAddr(append([]byte(nil), b[28:28+hlen]...)),
		Options: map[byte][]byte{},
	}
	opts := b[headerSize+4:]
	for i := 0; i < len(opts); {
		code := opts[i]
		if code == optPad {
			i++
			continue
		}
		if code == optEnd {
			break
		}
		if i+1 >= len(opts) {
			return nil, errors.New("dhcp: truncated option")
		}
		l := int(opts[i+1])
		if i+2+l > len(opts) {
			return nil, fmt.Errorf("dhcp: option %d overruns the message", code)
		}
		// Repeated options concatenate (RFC 3396).
		m.Options[code] = append(m.Options[code], opts[i+2:i+2+l]...)
		i += 2 + l
	}
	if t := m.Options[optMessageType]; len(t) == 1 {
		m.Type = t[0]
	}
	return m, nil
}

// newRequest is a client message of type t with the common options.
func newRequest(t byte, xid uint32, mac net.HardwareAddr, hostname string) *Message {
	m := &Message{Op: opRequest, XID: xid, Flags: flagBcast, CHAddr: mac, Type: t, Options: map[byte][]byte{}}
	m.Options[optClientID] = append([]byte{1}, mac...)
	m.Options[optParamList] = []byte{optSubnetMask, optRouter, optDNS, optLeaseTime, optRenewalT1}
	if hostname != "" && len(hostname) < 64 {
		m.Options[optHostname] = []byte(hostname)
	}
	return m
}

// DiscoverMessage starts an exchange.
func DiscoverMessage(xid uint32, mac net.HardwareAddr, hostname string) *Message {
	return newRequest(Discover, xid, mac, hostname)
}

// RequestMessage asks for an offered address (selecting: server given) or
// renews a lease (ciaddr given, no server).
func RequestMessage(xid uint32, mac net.HardwareAddr, hostname string, want, server, ciaddr netip.Addr) *Message {
	m := newRequest(Request, xid, mac, hostname)
	if ciaddr.IsValid() {
		m.CIAddr = ciaddr
	} else {
		v := want.As4()
		m.Options[optRequestedIP] = v[:]
	}
	if server.IsValid() {
		v := server.As4()
		m.Options[optServerID] = v[:]
	}
	return m
}

// Lease reads the lease an ACK (or an OFFER) carries.
func (m *Message) Lease() (*Lease, error) {
	if !m.YIAddr.Is4() || m.YIAddr.IsUnspecified() {
		return nil, errors.New("dhcp: no address offered")
	}
	bits := 24 // RFC 2131 leaves the default to the client; /24 is what NATs use
	if v := m.Options[optSubnetMask]; len(v) == 4 {
		ones, total := net.IPMask(v).Size()
		if total != 32 {
			return nil, fmt.Errorf("dhcp: non-contiguous subnet mask %v", net.IP(v))
		}
		bits = ones
	}
	l := &Lease{Address: netip.PrefixFrom(m.YIAddr, bits), Duration: time.Hour}
	if v := m.Options[optRouter]; len(v) >= 4 {
		l.Router = addr4(v[:4])
	}
	for v := m.Options[optDNS]; len(v) >= 4; v = v[4:] {
		l.DNS = append(l.DNS, addr4(v[:4]))
	}
	if v := m.Options[optServerID]; len(v) == 4 {
		l.Server = addr4(v)
	}
	if v := m.Options[optLeaseTime]; len(v) == 4 {
		if s := binary.BigEndian.Uint32(v); s != 0xffffffff {
			l.Duration = time.Duration(s) * time.Second
		} else {
			l.Duration = 0 // infinite
		}
	}
	l.RenewAt = l.Duration / 2
	if v := m.Options[optRenewalT1]; len(v) == 4 {
		l.RenewAt = time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	}
	return l, nil
}

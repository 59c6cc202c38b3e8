package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

var mac = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

// reply builds what a server sends: a BOOTREPLY with the given options.
func reply(t byte, xid uint32, yi string, opts ...[]byte) []byte {
	m := &Message{Op: opReply, XID: xid, CHAddr: mac, YIAddr: netip.MustParseAddr(yi), Type: t}
	b := m.Marshal()
	// Marshal wrote type + end; rebuild the options area by hand.
	b = b[:headerSize+4]
	b = append(b, optMessageType, 1, t)
	for _, o := range opts {
		b = append(b, o...)
	}
	return append(b, optEnd)
}

func opt(code byte, v ...byte) []byte { return append([]byte{code, byte(len(v))}, v...) }

func TestDiscoverWireFormat(t *testing.T) {
	b := DiscoverMessage(0xdeadbeef, mac, "moat-x").Marshal()
	if len(b) < 300 || b[0] != opRequest || b[1] != 1 || b[2] != 6 {
		t.Fatalf("header: % x", b[:4])
	}
	if binary.BigEndian.Uint32(b[4:8]) != 0xdeadbeef || binary.BigEndian.Uint16(b[10:12]) != flagBcast {
		t.Fatalf("xid/flags: % x", b[4:12])
	}
	if net.HardwareAddr(b[28:34]).String() != mac.String() {
		t.Fatalf("chaddr % x", b[28:34])
	}
	m, err := Parse(b)
	if err != nil || m.Type != Discover || string(m.Options[optHostname]) != "moat-x" {
		t.Fatalf("parse: %v %+v", err, m)
	}
	if got := m.Options[optClientID]; len(got) != 7 || got[0] != 1 {
		t.Fatalf("client id % x", got)
	}
	if _, ok := m.Options[optRequestedIP]; ok {
		t.Fatal("discover asks for an address")
	}
}

func TestRequestSelectingAndRenewing(t *testing.T) {
	want, srv := netip.MustParseAddr("192.168.64.5"), netip.MustParseAddr("192.168.64.1")
	m, _ := Parse(RequestMessage(7, mac, "", want, srv, netip.Addr{}).Marshal())
	if m.Type != Request || addr4(m.Options[optRequestedIP]) != want || addr4(m.Options[optServerID]) != srv || m.CIAddr.IsValid() && !m.CIAddr.IsUnspecified() {
		t.Fatalf("selecting: %+v", m)
	}
	m, _ = Parse(RequestMessage(8, mac, "", want, netip.Addr{}, want).Marshal())
	if m.CIAddr != want || m.Options[optRequestedIP] != nil || m.Options[optServerID] != nil {
		t.Fatalf("renewing: %+v", m)
	}
}

func TestLeaseFromAck(t *testing.T) {
	b := reply(Ack, 9, "192.168.64.5",
		opt(optSubnetMask, 255, 255, 255, 0),
		opt(optRouter, 192, 168, 64, 1),
		opt(optDNS, 192, 168, 64, 1, 8, 8, 8, 8),
		opt(optServerID, 192, 168, 64, 1),
		opt(optLeaseTime, 0, 0, 0x0e, 0x10), // 3600 s
	)
	m, err := Parse(b)
	if err != nil || m.Type != Ack || m.XID != 9 {
		t.Fatalf("parse: %v %+v", err, m)
	}
	l, err := m.Lease()
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "192.168.64.5/24" || l.Router.String() != "192.168.64.1" || len(l.DNS) != 2 || l.DNS[1].String() != "8.8.8.8" ||
		l.Server.String() != "192.168.64.1" || l.Duration != time.Hour || l.RenewAt != 30*time.Minute {
		t.Fatalf("lease: %+v", l)
	}
	// T1 given, infinite lease, /16 mask.
	m, _ = Parse(reply(Ack, 9, "10.1.2.3", opt(optSubnetMask, 255, 255, 0, 0), opt(optLeaseTime, 0xff, 0xff, 0xff, 0xff), opt(optRenewalT1, 0, 0, 0, 60)))
	l, _ = m.Lease()
	if l.Address.String() != "10.1.2.3/16" || l.Duration != 0 || l.RenewAt != time.Minute || l.Router.IsValid() {
		t.Fatalf("lease 2: %+v", l)
	}
	// No mask: /24.
	m, _ = Parse(reply(Offer, 9, "10.0.2.15"))
	if l, _ := m.Lease(); l.Address.String() != "10.0.2.15/24" {
		t.Fatalf("default mask: %+v", l)
	}
	// Refusals.
	m, _ = Parse(reply(Ack, 9, "0.0.0.0"))
	if _, err := m.Lease(); err == nil {
		t.Fatal("a lease of 0.0.0.0")
	}
	m, _ = Parse(reply(Ack, 9, "10.0.0.2", opt(optSubnetMask, 255, 0, 255, 0)))
	if _, err := m.Lease(); err == nil {
		t.Fatal("a non-contiguous mask was accepted")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	good := reply(Ack, 1, "10.0.0.2", opt(optRouter, 10, 0, 0, 1))
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     good[:100],
		"no cookie": append(append([]byte{}, good[:headerSize]...), 1, 2, 3, 4, optEnd),
		"overrun":   append(append([]byte{}, good[:headerSize+4]...), optRouter, 40, 1, 2),
		"truncated": append(append([]byte{}, good[:headerSize+4]...), optRouter),
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// Every prefix of a good message either parses or errors; none panics.
	for i := range good {
		Parse(good[:i])
	}
}

func TestUDPPacketRoundTrip(t *testing.T) {
	payload := []byte("hello, dhcp server")
	p := udpPacket(netip.IPv4Unspecified(), broadcastAddr, ClientPort, ServerPort, payload)
	if checksum(p[:20], 0) != 0 {
		t.Fatal("bad IPv4 header checksum")
	}
	// The UDP checksum over pseudo-header + segment sums to zero.
	var pseudo uint32 = 17 + uint32(len(p)-20)
	pseudo += 0xffff + 0xffff // 255.255.255.255
	if checksum(p[20:], pseudo) != 0 {
		t.Fatal("bad UDP checksum")
	}
	got, err := udpPayload(p, ServerPort)
	if err != nil || string(got) != string(payload) {
		t.Fatalf("payload: %q %v", got, err)
	}
	if _, err := udpPayload(p, ClientPort); err == nil {
		t.Fatal("accepted a packet to another port")
	}
	p[12] ^= 1 // corrupt the header
	if _, err := udpPayload(p, ServerPort); err == nil {
		t.Fatal("accepted a corrupt header")
	}
	for i := range p {
		udpPayload(p[:i], ServerPort)
	}
}

// A known vector: RFC 1071's example words sum to 0xddf2, so the checksum
// is its complement.
func TestChecksumVector(t *testing.T) {
	if got := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0); got != ^uint16(0xddf2) {
		t.Fatalf("checksum %#x", got)
	}
}

var broadcastAddr = netip.AddrFrom4([4]byte{255, 255, 255, 255})

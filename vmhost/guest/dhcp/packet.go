package dhcp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Ports of DHCPv4.
const (
	ClientPort = 68
	ServerPort = 67
)

// udpPacket wraps payload in IPv4 and UDP headers, src → dst.
func udpPacket(src, dst netip.Addr, srcPort, dstPort uint16, payload []byte) []byte {
	const ihl = 20
	total := ihl + 8 + len(payload)
	p := make([]byte, total)
	p[0] = 0x45 // version 4, 5 words
	p[1] = 0x10 // TOS: low delay, as DHCP clients send
	binary.BigEndian.PutUint16(p[2:4], uint16(total))
	p[8] = 64 // TTL
	p[9] = 17 // UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], checksum(p[:ihl], 0))

	u := p[ihl:]
	binary.BigEndian.PutUint16(u[0:2], srcPort)
	binary.BigEndian.PutUint16(u[2:4], dstPort)
	binary.BigEndian.PutUint16(u[4:6], uint16(8+len(payload)))
	copy(u[8:], payload)
	// The pseudo-header: addresses, protocol, UDP length.
	var pseudo uint32
	pseudo += uint32(binary.BigEndian.Uint16(s[0:2])) + uint32(binary.BigEndian.Uint16(s[2:4]))
	pseudo += uint32(binary.BigEndian.Uint16(d[0:2])) + uint32(binary.BigEndian.Uint16(d[2:4]))
	pseudo += 17 + uint32(8+len(payload))
	cs := checksum(u, pseudo)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:8], cs)
	return p
}

// checksum is the Internet checksum of b with an initial sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

var errNotDHCP = errors.New("not a DHCP reply")

// udpPayload returns the payload of an IPv4/UDP packet to dstPort; it checks
// the IPv4 header checksum (the UDP one may be left to offload).
func udpPayload(p []byte, dstPort uint16) ([]byte, error) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return nil, errNotDHCP
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl+8 || p[9] != 17 {
		return nil, errNotDHCP
	}
	if checksum(p[:ihl], 0) != 0 {
		return nil, errNotDHCP
	}
	if binary.BigEndian.Uint16(p[6:8])&0x3fff != 0 { // fragments
		return nil, errNotDHCP
	}
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if total > len(p) || total < ihl+8 {
		return nil, errNotDHCP
	}
	u := p[ihl:total]
	if binary.BigEndian.Uint16(u[2:4]) != dstPort {
		return nil, errNotDHCP
	}
	ul := int(binary.BigEndian.Uint16(u[4:6]))
	if ul < 8 || ul > len(u) {
		return nil, errNotDHCP
	}
	return u[8:ul], nil
}

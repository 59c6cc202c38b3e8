//go:build linux

// Package netcfg configures the guest's network without any userland tools:
// interface flags and IPv4 addresses through ioctls, the default route
// through rtnetlink, and /etc/resolv.conf and /etc/hosts as files.
package netcfg

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/dhcp"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

func ioctlSock() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
}

// Up sets IFF_UP on the interface.
func Up(name string) error {
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: get flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: set up: %w", name, err)
	}
	return nil
}

// SetAddr assigns an IPv4 address and netmask (from the prefix length).
func SetAddr(name string, p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("%s: only IPv4 addresses are supported, got %s", name, p)
	}
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	a := p.Addr().As4()
	if err := ifr.SetInet4Addr(a[:]); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
		return fmt.Errorf("%s: set address %s: %w", name, p.Addr(), err)
	}
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	if err := ifr.SetInet4Addr(mask); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
		return fmt.Errorf("%s: set netmask /%d: %w", name, p.Bits(), err)
	}
	return nil
}

// AddDefaultRoute adds 0.0.0.0/0 via gw on the interface (rtnetlink
// RTM_NEWROUTE). An existing identical route is not an error.
func AddDefaultRoute(name string, gw netip.Addr) error {
	if !gw.Is4() {
		return fmt.Errorf("gateway %s: only IPv4 is supported", gw)
	}
	ifindex, err := ifIndex(name)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	g := gw.As4()
	idx := make([]byte, 4)
	binary.NativeEndian.PutUint32(idx, uint32(ifindex))
	body := []byte{
		unix.AF_INET, 0, 0, 0, // family, dst_len, src_len, tos
		unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST,
		0, 0, 0, 0, // flags
	}
	body = appendAttr(body, unix.RTA_GATEWAY, g[:])
	body = appendAttr(body, unix.RTA_OIF, idx)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.RTM_NEWROUTE)
	binary.NativeEndian.PutUint16(msg[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	binary.NativeEndian.PutUint32(msg[8:12], 1)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 4096)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("netlink receive: %w", err)
	}
	if n < unix.NLMSG_HDRLEN+4 || binary.NativeEndian.Uint16(buf[4:6]) != unix.NLMSG_ERROR {
		return fmt.Errorf("netlink: unexpected answer")
	}
	if e := int32(binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN:])); e != 0 {
		errno := unix.Errno(-e)
		if errno == unix.EEXIST {
			return nil
		}
		return fmt.Errorf("add default route via %s dev %s: %w", gw, name, errno)
	}
	return nil
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	hdr := make([]byte, 4)
	binary.NativeEndian.PutUint16(hdr[0:2], uint16(l))
	binary.NativeEndian.PutUint16(hdr[2:4], typ)
	b = append(b, hdr...)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ifIndex(name string) (int, error) {
	fd, err := ioctlSock()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// WaitInterface waits up to timeout for /sys/class/net/<name> to appear
// (the NIC driver may still be probing right after module load).
func WaitInterface(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s did not appear within %v", name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Configure brings up n.Interface with its address and default route and
// writes root/etc/resolv.conf. lo is brought up separately (Loopback).
func Configure(root string, n *protocol.Network) error {
	name := n.Interface
	if name == "" {
		name = "eth0"
	}
	p, err := netip.ParsePrefix(n.Address)
	if err != nil {
		return fmt.Errorf("network address %q: %w", n.Address, err)
	}
	if err := WaitInterface(name, 3*time.Second); err != nil {
		return err
	}
	if err := SetAddr(name, p); err != nil {
		return err
	}
	if err := Up(name); err != nil {
		return err
	}
	if n.Gateway != "" {
		gw, err := netip.ParseAddr(n.Gateway)
		if err != nil {
			return fmt.Errorf("gateway %q: %w", n.Gateway, err)
		}
		if err := AddDefaultRoute(name, gw); err != nil {
			return err
		}
	}
	if len(n.DNS) > 0 {
		if err := WriteResolvConf(root, n.DNS); err != nil {
			return err
		}
	}
	return nil
}

// ConfigureDHCP brings up n.Interface, leases an address by DHCP (waiting
// up to timeout) and applies it: address, default route, resolv.conf.
func ConfigureDHCP(ctx context.Context, root string, n *protocol.Network, hostname string, timeout time.Duration) (*dhcp.Lease, error) {
	name := ifName(n)
	if err := WaitInterface(name, 3*time.Second); err != nil {
		return nil, err
	}
	if err := Up(name); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l, err := dhcp.Acquire(actx, name, hostname)
	if err != nil {
		return nil, err
	}
	return l, applyLease(root, name, l)
}

func applyLease(root, name string, l *dhcp.Lease) error {
	if err := SetAddr(name, l.Address); err != nil {
		return err
	}
	if l.Router.IsValid() {
		if err := AddDefaultRoute(name, l.Router); err != nil {
			return err
		}
	}
	if len(l.DNS) > 0 {
		var dns []string
		for _, d := range l.DNS {
			dns = append(dns, d.String())
		}
		return WriteResolvConf(root, dns)
	}
	return nil
}

// MaintainLease renews l at its renewal time until ctx ends, applying what
// the server answers; when renewal fails or is refused it leases afresh.
// It logs each change through logf.
func MaintainLease(ctx context.Context, root string, n *protocol.Network, hostname string, l *dhcp.Lease, logf func(string, ...any)) {
	name := ifName(n)
	for l.Duration > 0 {
		wait := l.RenewAt
		if wait < 10*time.Second {
			wait = 10 * time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		nl, err := dhcp.Renew(ctx, name, hostname, l)
		if err != nil {
			logf("network: %v; leasing again", err)
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			nl, err = dhcp.Acquire(actx, name, hostname)
			cancel()
			if err != nil {
				logf("network: %v; keeping %s", err, l.Address)
				continue
			}
		}
		if nl.Address != l.Address || nl.Router != l.Router {
			logf("network: lease changed from %s to %s via %s", l.Address, nl.Address, nl.Router)
		}
		if err := applyLease(root, name, nl); err != nil {
			logf("network: apply lease %s: %v", nl.Address, err)
		}
		l = nl
	}
}

func ifName(n *protocol.Network) string {
	if n.Interface == "" {
		return "eth0"
	}
	return n.Interface
}

// Loopback brings lo up (the kernel assigns 127.0.0.1/8 itself).
func Loopback() error { return Up("lo") }

// WriteResolvConf replaces root/etc/resolv.conf (a symlink, as on
// systemd-resolved images, is replaced by a file).
func WriteResolvConf(root string, dns []string) error {
	var b strings.Builder
	for _, d := range dns {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("dns server %q: %w", d, err)
		}
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return replaceFile(filepath.Join(root, "etc/resolv.conf"), []byte(b.String()))
}

// WriteHosts makes root/etc/hosts resolve localhost and hostname.
func WriteHosts(root, hostname string) error {
	p := filepath.Join(root, "etc/hosts")
	old, _ := os.ReadFile(p)
	var keep []string
	for _, l := range strings.Split(string(old), "\n") {
		if strings.Contains(l, "# moat") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) == 0 {
		keep = append(keep, "127.0.0.1\tlocalhost", "::1\tlocalhost")
	}
	if hostname != "" {
		keep = append(keep, "127.0.1.1\t"+hostname+"\t# moat")
	}
	return replaceFile(p, []byte(strings.Join(keep, "\n")+"\n"))
}

func replaceFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".moat-tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

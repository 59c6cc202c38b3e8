//go:build linux

package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatsandbox/moat/vmhost/guest/server"
	"github.com/moatsandbox/moat/vmhost/protocol"
)

// FindPort returns /dev/<port> of the virtio-serial port called name, from
// sysRoot/class/virtio-ports/*/name (sysRoot is "/sys" in the guest).
func FindPort(sysRoot, name string) (string, error) {
	dirs, err := filepath.Glob(filepath.Join(sysRoot, "class/virtio-ports/*/name"))
	if err != nil {
		return "", err
	}
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(f)), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %s", name)
}

// WaitPort polls FindPort for up to timeout (the port appears shortly after
// virtio_console is loaded), and for the device node to exist.
func WaitPort(name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		dev, err := FindPort("/sys", name)
		if err == nil {
			if _, serr := os.Stat(dev); serr == nil {
				return dev, nil
			}
			err = fmt.Errorf("%s not present yet", dev)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ServePort serves sessions on a virtio-serial port forever: open, run a
// yamux session until it ends (reads return EOF while the host end is not
// connected), close, back off briefly, reopen. Processes keep running across
// sessions.
func ServePort(srv *server.Server, dev string, log *Logger) {
	backoff := 50 * time.Millisecond
	quiet := 0
	for {
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			log.Printf("open %s: %v", dev, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		start := time.Now()
		err = srv.ServeConn(f)
		lived := time.Since(start)
		if lived > time.Second {
			// A real session ended (the host went away): say so once.
			log.Printf("session on %s ended after %v: %v", dev, lived.Round(time.Millisecond), err)
			backoff, quiet = 50*time.Millisecond, 0
		} else {
			// The host is not connected: retry quietly, a bit slower each time.
			quiet++
			backoff = min(backoff*2, 200*time.Millisecond)
		}
		time.Sleep(backoff)
	}
}

// ListenVsock listens on AF_VSOCK port (any CID). Used by the vz and HCS
// drivers, where the host dials the guest.
func ListenVsock(port uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("vsock socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("vsock bind port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("vsock listen: %w", err)
	}
	return fd, nil
}

// ServeVsock accepts host connections forever, one session per connection.
func ServeVsock(srv *server.Server, fd int, log *Logger) {
	for {
		nfd, sa, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			log.Printf("vsock accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		peer := ""
		if vm, ok := sa.(*unix.SockaddrVM); ok {
			peer = fmt.Sprintf("cid %d port %d", vm.CID, vm.Port)
		}
		log.Printf("vsock session from %s", peer)
		_ = unix.SetNonblock(nfd, true)
		conn := os.NewFile(uintptr(nfd), "vsock")
		go func() {
			err := srv.ServeConn(conn)
			log.Printf("vsock session from %s ended: %v", peer, err)
		}()
	}
}

// OpenChannel finds the agent channel: the virtio-serial port named
// protocol.ChannelName if it shows up within portWait, else a vsock listener
// on protocol.VsockPort. serve runs the chosen channel forever.
func OpenChannel(portWait time.Duration, log *Logger) (kind string, serve func(*server.Server), err error) {
	dev, perr := WaitPort(protocol.ChannelName, portWait)
	if perr == nil {
		return "virtio-serial " + dev, func(s *server.Server) { ServePort(s, dev, log) }, nil
	}
	fd, verr := ListenVsock(protocol.VsockPort)
	if verr == nil {
		return fmt.Sprintf("vsock port %d", protocol.VsockPort), func(s *server.Server) { ServeVsock(s, fd, log) }, nil
	}
	return "", nil, fmt.Errorf("no agent channel: %v; %v", perr, verr)
}

//go:build linux

// Command moat-guest is the Moat guest agent: /init (PID 1) of every sandbox
// VM. It mounts the basics, loads the initramfs's kernel modules, finds the
// agent channel and serves the host↔guest protocol (vmhost/protocol) on it:
// assembling the sandbox root, shares and network on the first hello, running
// processes with PTYs or pipes, and powering off on shutdown.
//
// Not as PID 1 (for development), `moat-guest -listen unix:PATH` serves the
// same protocol on a unix socket without touching the machine: configs are
// accepted and ignored, processes run as the caller allows, shutdown only
// acknowledges.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	"github.com/moatsandbox/moat/internal/version"
	"github.com/moatsandbox/moat/vmhost/guest/boot"
	"github.com/moatsandbox/moat/vmhost/guest/reaper"
	"github.com/moatsandbox/moat/vmhost/guest/server"
)

func main() {
	if os.Getpid() == 1 {
		boot.Main() // never returns
	}
	listen := flag.String("listen", "", "serve the protocol on unix:PATH (development; not as PID 1)")
	root := flag.String("root", "/", "directory whose etc/passwd resolves exec users")
	flag.Parse()
	path, ok := strings.CutPrefix(*listen, "unix:")
	if !ok || path == "" {
		fmt.Fprintln(os.Stderr, "moat-guest runs as /init of a Moat sandbox VM; for development: moat-guest -listen unix:PATH")
		os.Exit(2)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	srv := &server.Server{Reaper: reaper.Default(), Root: *root, AgentVersion: version.Version, Kernel: boot.Release()}
	log.Printf("moat-guest %s serving on %s", version.Version, path)
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			err := srv.ServeConn(c)
			log.Printf("session ended: %v", err)
		}()
	}
}

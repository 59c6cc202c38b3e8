// Package supervisortest runs sandbox supervisors in-process with a fake
// driver, for tests of the daemon and the layers above it.
package supervisortest

import (
	"context"
	"sync"

	"github.com/moatsandbox/moat/vmhost/driver/fakedriver"
	"github.com/moatsandbox/moat/vmhost/state"
	"github.com/moatsandbox/moat/vmhost/supervisor"
)

// Launcher runs supervisors as goroutines with a fake driver; it
// implements the daemon's launcher.
type Launcher struct {
	L      *state.Layout
	Driver *fakedriver.Driver
	Assets string
	wg     sync.WaitGroup
}

// Launch starts the supervisor of sandbox name.
func (x *Launcher) Launch(name string) error {
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		supervisor.Run(context.Background(), supervisor.Config{
			Layout: x.L, Name: name, Driver: x.Driver, Assets: fakedriver.Assets(x.Assets), DataSize: 1 << 20,
			Logf: func(string, ...any) {},
		})
	}()
	return nil
}

// Wait waits for every launched supervisor to end.
func (x *Launcher) Wait() { x.wg.Wait() }

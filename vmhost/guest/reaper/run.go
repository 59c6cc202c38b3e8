//go:build linux

package reaper

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Run starts path with argv and env, waits for it through the reaper, and
// returns its combined stdout and stderr. A non-zero exit is an error that
// includes the output's tail. Use it instead of os/exec inside the agent.
func (r *Reaper) Run(path string, argv, env []string) ([]byte, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, done, err := r.Start(func() (int, error) {
		return syscall.ForkExec(path, argv, &syscall.ProcAttr{
			Env:   env,
			Files: []uintptr{devnull.Fd(), pw.Fd(), pw.Fd()},
		})
	})
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	var out bytes.Buffer
	_, _ = io.Copy(&out, pr)
	pr.Close()
	st := <-done
	if code, _ := st.Code(); code != 0 {
		tail := out.Bytes()
		if len(tail) > 512 {
			tail = tail[len(tail)-512:]
		}
		return out.Bytes(), fmt.Errorf("%s exited with code %d: %s", path, code, bytes.TrimSpace(tail))
	}
	return out.Bytes(), nil
}

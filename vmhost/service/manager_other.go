//go:build !windows

package service

func newPlatformManager() (Manager, error) { return nil, errNotSupported }

// elevated reports whether this process may install a system service
// (only Windows needs it).
func elevated() bool { return true }

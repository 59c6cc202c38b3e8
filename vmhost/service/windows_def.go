package service

import (
	ks "github.com/kardianos/service"
)

// Option keys of github.com/kardianos/service's Windows backend (its
// constants exist only in windows builds; the definition is generated and
// tested everywhere).
const (
	winOptStartType      = "StartType"
	winOptOnFailure      = "OnFailure"
	winOptOnFailureDelay = "OnFailureDelayDuration"
	winOptOnFailureReset = "OnFailureResetPeriod"
	winOptDelayedStart   = "DelayedAutoStart"
)

// WindowsConfig is the Windows service definition of s, for
// github.com/kardianos/service: an own-process service started
// automatically at boot and restarted 5 s after a failure. It runs as
// LocalSystem (HCS needs it), so the environment carries MOAT_HOME: the
// installing user's state directory, not the system profile's.
func WindowsConfig(s Spec) *ks.Config {
	return &ks.Config{
		Name:        WindowsName,
		DisplayName: DisplayName,
		Description: Description,
		Executable:  s.Exe,
		Arguments:   append([]string(nil), s.Args...),
		EnvVars:     s.Env,
		Option: ks.KeyValue{
			winOptStartType:      "automatic",
			winOptOnFailure:      "restart",
			winOptOnFailureDelay: "5s",
			winOptOnFailureReset: 60,
			winOptDelayedStart:   false,
		},
	}
}

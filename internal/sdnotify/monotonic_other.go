//go:build !linux

package sdnotify

// monotonicUsec is unknown off Linux, where systemd does not run.
func monotonicUsec() (int64, bool) { return 0, false }

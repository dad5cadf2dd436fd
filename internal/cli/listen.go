package cli

import (
	"errors"
	"net"
	"strconv"
	"syscall"
)

// ListenError explains a failure to listen on addr, given by flag (such
// as "-listen"), with what fixes the common causes: a port under 1024
// without the privilege to bind it, or a port that another process holds.
// The message names the flag and the address once: the layers between
// (each of which named the address again) are left out of the text, and
// kept for errors.Is and errors.As.
func ListenError(err error, addr, flag string) error {
	if err == nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	what := flag + " " + addr
	cause := err.Error()
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		// "listen tcp 127.0.0.1:443: bind: permission denied" says the
		// address a second time; keep the network, which tells TCP from
		// UDP (HTTP/3 and DNS listen on both).
		if op.Net != "" {
			what += " (" + op.Net + ")"
		}
		cause = op.Err.Error()
	}
	var fix string
	switch {
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		fix = "ports below 1024 need root or the capability CAP_NET_BIND_SERVICE: " +
			"run under the systemd unit (AmbientCapabilities=CAP_NET_BIND_SERVICE, see deploy/systemd), " +
			"grant it once with setcap cap_net_bind_service=+ep on the binary, or listen on a port from 1024 up"
	case errors.Is(err, syscall.EADDRINUSE):
		fix = "another process listens there (ss -tulpn shows which): stop it, or choose another address with " + flag
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		fix = "this host has no such address: give one of its addresses, or 0.0.0.0 or [::] for all"
	}
	msg := what + ": " + cause
	if fix != "" {
		msg += ": " + fix
	}
	return &listenError{msg: msg, err: err}
}

// listenError is ListenError's result: its own text, the original error
// underneath.
type listenError struct {
	msg string
	err error
}

func (e *listenError) Error() string { return e.msg }
func (e *listenError) Unwrap() error { return e.err }

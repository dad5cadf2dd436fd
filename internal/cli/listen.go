package cli

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// ListenError explains a failure to listen on addr, given by flag (such
// as "-listen"), with what fixes the common causes: a port under 1024
// without the privilege to bind it, or a port that another process holds.
// Other errors come back wrapped with the flag and the address.
func ListenError(err error, addr, flag string) error {
	if err == nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	switch {
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		return fmt.Errorf("%s %s: %w: ports below 1024 need root or the capability CAP_NET_BIND_SERVICE: "+
			"run under the systemd unit (AmbientCapabilities=CAP_NET_BIND_SERVICE, see deploy/systemd), "+
			"grant it once with setcap cap_net_bind_service=+ep on the binary, or listen on a port from 1024 up", flag, addr, err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s: %w: another process listens there (ss -tulpn shows which): stop it, or choose another address with %s", flag, addr, err, flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: %w: this host has no such address: give one of its addresses, or 0.0.0.0 or [::] for all", flag, addr, err)
	}
	return fmt.Errorf("%s %s: %w", flag, addr, err)
}

// Package sdnotify tells the service manager about a daemon's state, as
// systemd's sd_notify(3) does: one datagram of "KEY=VALUE" lines to the
// unix socket named by $NOTIFY_SOCKET. systemd units of Type=notify wait
// for READY=1 before they count the service as started, so that units
// ordered after it (a proxy after a target on one host, a resolver client
// after the stub) start only once it serves.
//
// Without $NOTIFY_SOCKET (not run by systemd, or by a unit of another type)
// every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// The states a daemon reports (see sd_notify(3)).
const (
	// Ready: start-up finished, the listeners serve.
	Ready = "READY=1"
	// Stopping: the daemon is draining before it exits.
	Stopping = "STOPPING=1"
	// Reloading: a reload (SIGHUP) began; send Ready once it is over.
	Reloading = "RELOADING=1"
)

// Notify sends state (one or more "KEY=VALUE" lines) to $NOTIFY_SOCKET. It
// returns nil without sending when the variable is unset or empty. A
// Reloading state gets the MONOTONIC_USEC line that systemd 253's
// Type=notify-reload requires, harmless to older managers.
func Notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if usec, ok := monotonicUsec(); ok && state == Reloading {
		state += "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
	}
	return send(sock, state)
}

func send(sock, state string) error {
	// Go's net package dials "@name" as the abstract socket "\x00name".
	if sock[0] != '/' && sock[0] != '@' {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract socket", sock)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	// A full socket buffer must not stall a daemon's start or stop.
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

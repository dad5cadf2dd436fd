// Package testnet holds loopback addresses for tests that no other
// process can take while the test runs.
package testnet

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// RefusingAddr returns a "127.0.0.1:port" where a TCP connection is
// refused until the end of the test. The port is held by a socket that is
// bound and never listens: a port found free and released could be bound
// by any other process (another test's listener) before it is dialled.
// The socket sets no SO_REUSEADDR, so nobody can bind the port beside it.
func RefusingAddr(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatalf("testnet: socket: %v", err)
	}
	syscall.CloseOnExec(fd) // not inherited by the daemons a test starts
	tb.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("testnet: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatalf("testnet: getsockname: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

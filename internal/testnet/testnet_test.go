package testnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A connection to the address is refused, and the port cannot be bound
// by anyone else (Go's listeners set SO_REUSEADDR) while it is held.
func TestRefusingAddr(t *testing.T) {
	addr := RefusingAddr(t)
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if err == nil {
			ln.Close()
		}
		t.Fatalf("listen on %s: %v, want address in use", addr, err)
	}
}

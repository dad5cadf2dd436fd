package cli

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
)

// A taken port and an address the host lacks say what to do.
func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = net.Listen("tcp", addr)
	// As the layers between wrap it: the address, the network and the
	// package once each in their text, and once in ListenError's.
	wrapped := fmt.Errorf("stub on %s: listening on tcp: %w", addr, err)
	lerr := ListenError(wrapped, addr, "-listen")
	if !errors.Is(lerr, syscall.EADDRINUSE) {
		t.Errorf("%v is not EADDRINUSE underneath", lerr)
	}
	got := lerr.Error()
	if want := "-listen " + addr + " (tcp): bind: address already in use: "; !strings.HasPrefix(got, want) || strings.Count(got, addr) != 1 {
		t.Errorf("port taken: %q, want it to start %q and name the address once", got, want)
	}
	if !strings.HasPrefix(got, "-listen "+addr+" (tcp): ") || !strings.Contains(got, "another process listens there (ss -tulpn shows which): stop it, or choose another address with -listen") {
		t.Errorf("port taken: %s", got)
	}
	_, err = net.Listen("tcp", "192.0.2.1:0") // TEST-NET-1: not this host's
	if err == nil {
		t.Skip("this host has 192.0.2.1")
	}
	if got := ListenError(err, "192.0.2.1:0", "-admin").Error(); !strings.Contains(got, "this host has no such address") {
		t.Errorf("foreign address: %s", got)
	}
	if ListenError(nil, addr, "-listen") != nil {
		t.Error("nil error wrapped")
	}
}

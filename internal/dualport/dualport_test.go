package dualport

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

func TestListenSamePort(t *testing.T) {
	tcp, udp, err := Listen("127.0.0.1", "0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	defer udp.Close()
	tp, up := tcp.Addr().(*net.TCPAddr).Port, udp.LocalAddr().(*net.UDPAddr).Port
	if tp != up || tp == 0 {
		t.Fatalf("tcp port %d, udp port %d", tp, up)
	}
	// The fixed port is now taken on both: a second Listen fails at once.
	if _, _, err := Listen("127.0.0.1", strconv.Itoa(tp)); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listening again on %d: %v, want EADDRINUSE", tp, err)
	}
}

// TestListenSkipsPortTakenOnUDP holds many UDP ports, so that the kernel's
// TCP pick often lands on one, and checks that Listen always ends up with a
// port free on both.
func TestListenSkipsPortTakenOnUDP(t *testing.T) {
	var held []net.PacketConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for range 20 {
		tcp, udp, err := Listen("127.0.0.1", "0")
		if err != nil {
			t.Fatal(err)
		}
		if tcp.Addr().(*net.TCPAddr).Port != udp.LocalAddr().(*net.UDPAddr).Port {
			t.Fatal("ports differ")
		}
		tcp.Close()
		udp.Close()
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp, err := Listen("127.0.0.1", strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d not free: %v", port, err)
	}
	tcp.Close()
	udp.Close()
}

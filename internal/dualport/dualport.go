// Package dualport binds a TCP listener and a UDP socket on one port, as the
// servers that speak both need: HTTP/2 and HTTP/3 (internal/httpserve), DNS
// over TCP and UDP (the client's stub, the test resolver).
package dualport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// attempts is how often Listen tries, with port 0, for a port that the
// kernel gave TCP and that UDP also has free.
const attempts = 20

// Listen binds TCP on host:port and UDP on the same port (the one the
// kernel picked, for port "0"). With port 0 it tries again when the
// picked port is taken on UDP; with a fixed port it fails at once.
func Listen(host, port string) (net.Listener, net.PacketConn, error) {
	n := 1
	if port == "0" {
		n = attempts
	}
	var err error
	for range n {
		var tcp net.Listener
		tcp, err = net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("listening on tcp: %w", err)
		}
		bound := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)
		var udp net.PacketConn
		udp, err = net.ListenPacket("udp", net.JoinHostPort(host, bound))
		if err == nil {
			return tcp, udp, nil
		}
		tcp.Close()
		err = fmt.Errorf("listening on udp: %w", err)
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if n > 1 {
		return nil, nil, fmt.Errorf("no port free on both tcp and udp after %d attempts: %w", n, err)
	}
	return nil, nil, err
}

// FreePort returns a port that was free on host for both TCP and UDP a
// moment ago, for a program that binds it itself (a test's resolver).
func FreePort(host string) (int, error) {
	tcp, udp, err := Listen(host, "0")
	if err != nil {
		return 0, err
	}
	port := tcp.Addr().(*net.TCPAddr).Port
	tcp.Close()
	udp.Close()
	return port, nil
}

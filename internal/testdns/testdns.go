// Package testdns runs DNS servers written by tests, on loopback: where a
// test must force a failure or an exact answer that a real resolver
// (internal/testunbound) cannot give.
package testdns

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// Server is a UDP DNS server on 127.0.0.1.
type Server struct {
	// Addr is its "127.0.0.1:port".
	Addr string
	srv  *dns.Server
}

// Start serves h on a free UDP port of 127.0.0.1 until Stop or the end of
// the test, and returns once it reads queries.
func Start(tb testing.TB, h dns.HandlerFunc) *Server {
	tb.Helper()
	return StartOn(tb, "127.0.0.1:0", h)
}

// StartOn is Start on addr, e.g. the address of a stopped Server.
func StartOn(tb testing.TB, addr string, h dns.HandlerFunc) *Server {
	tb.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), srv: &dns.Server{PacketConn: pc, Handler: h}}
	started := make(chan struct{})
	s.srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = s.srv.ActivateAndServe() }()
	<-started
	tb.Cleanup(s.Stop)
	return s
}

// URL is the server as an upstream URL, "udp://127.0.0.1:port".
func (s *Server) URL() string { return "udp://" + s.Addr }

// Stop closes the socket: queries to Addr are refused from now on. Later
// calls do nothing.
func (s *Server) Stop() { _ = s.srv.Shutdown() }

package client_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"github.com/odohd/odoh/internal/testca"
)

// A proxy that speaks HTTP/1.1 only (behind a TLS-terminating balancer
// without HTTP/2, say): the client's CONNECT goes over HTTP/1.1, and the
// tunnel still carries its configs fetch.
func TestTunnelOverHTTP1Proxy(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := w.ca.ServerTLS(t, append([]string{honestProxy}, testca.DefaultNames()...)...)
	conf.NextProtos = []string{"http/1.1"}
	srv := &http.Server{Handler: w.relay, TLSConfig: conf}
	go func() { _ = srv.Serve(tls.NewListener(ln, conf)) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	cfg := w.config(honestProxy, w.psrv, false, nil)
	cfg.Proxies = []string{"https://" + honestProxy + ":" + port + "/dns-query{?targethost,targetpath}"}
	cfg.Resolve[honestProxy+":"+port] = addr
	before := w.honest.ConfigFetches.Load()
	if err := exchange(t, newClient(t, cfg)); err != nil {
		t.Fatal(err)
	}
	if n := w.honest.ConfigFetches.Load() - before; n != 2 {
		t.Errorf("%d configs fetches at the target, want 2 (tunnel and relay)", n)
	}
}

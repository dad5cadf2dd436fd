package client_test

// More ways a dishonest proxy could try to learn what the tunnel hides or
// to slip in configs of its own: TLS session resumption, Alt-Svc, and the
// refetch after a 401.

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/proxy"
)

// resumeRecorder records, for each configs fetch inside a tunnel (the
// client's own TLS session with the target, HTTP/1.1), whether its TLS
// session was resumed.
type resumeRecorder struct {
	h       http.Handler
	mu      sync.Mutex
	resumed []bool
}

func (rr *resumeRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.TLS != nil {
		rr.mu.Lock()
		rr.resumed = append(rr.resumed, r.TLS.DidResume)
		rr.mu.Unlock()
	}
	rr.h.ServeHTTP(w, r)
}

// A session ticket would let the target tie one tunnelled fetch to the
// next (both from the proxy's address): no tunnel session is resumed,
// though the target offers tickets.
func TestTunnelResumesNoSession(t *testing.T) {
	w := newWorld(t)
	rr := &resumeRecorder{h: w.honest}
	c := newClient(t, w.behindProxy(t, rr))
	for range 3 {
		if _, err := c.Configs(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.resumed) != 3 {
		t.Fatalf("%d tunnelled fetches, want 3", len(rr.resumed))
	}
	for i, r := range rr.resumed {
		if r {
			t.Errorf("tunnelled fetch %d resumed a TLS session", i+1)
		}
	}
}

// counter counts TCP connections and UDP datagrams to one port.
type counter struct {
	addr  string
	conns atomic.Int64
}

func newCounter(t *testing.T) *counter {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			_ = ln.Close()
			continue
		}
		c := &counter{addr: ln.Addr().String()}
		t.Cleanup(func() { _ = ln.Close(); _ = pc.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				c.conns.Add(1)
				_ = conn.Close()
			}
		}()
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				c.conns.Add(1)
			}
		}()
		return c
	}
	t.Fatal("no port free for TCP and UDP")
	return nil
}

// A proxy that advertises alternative services (RFC 7838) elsewhere, on
// every answer, moves none of the client's requests there: not its
// queries, CONNECTs or relay fetches, over HTTP/2 or HTTP/3.
func TestProxyAltSvcIgnored(t *testing.T) {
	w := newWorld(t)
	elsewhere := newCounter(t)
	_, port, _ := net.SplitHostPort(elsewhere.addr)
	alt := `h3="127.0.0.1:` + port + `"; ma=86400, h2="127.0.0.1:` + port + `"; ma=86400, h3=":` + port + `"`
	front := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Alt-Svc", alt)
		w.relay.ServeHTTP(rw, r)
	})
	srv := odohtest.Serve(t, w.ca, front, honestProxy)
	for _, h3 := range []bool{false, true} {
		c := newClient(t, w.config(honestProxy, srv, h3, nil))
		for range 3 {
			if err := exchange(t, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := elsewhere.conns.Load(); n != 0 {
		t.Errorf("%d connections or datagrams to the advertised alternative", n)
	}
}

// The refetch after a 401 goes through the tunnel and the relay too: the
// target sees it from the proxy's address, never the client's. (A proxy
// whose cached configs may be dropped at once, so that the relay fetches
// the new ones.)
func TestRefetchAfter401FromProxyAddress(t *testing.T) {
	w := newWorld(t)
	h, err := proxy.New(proxy.Config{
		Policy:        proxy.Policy{Allow: []string{w.host()}, AllowSpecialAddrs: true},
		Resolver:      testResolver(t, map[string]string{targetName: "127.0.0.1"}),
		RootCAs:       w.ca.Pool(),
		ConfigsMinAge: time.Nanosecond,
		ClientRate:    -1,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	psrv := odohtest.Serve(t, w.ca, h, honestProxy)
	for _, h3 := range []bool{false, true} {
		c := newClient(t, w.config(honestProxy, psrv, h3, nil))
		if err := exchange(t, c); err != nil {
			t.Fatal(err)
		}
		w.honest.Rotate(t)
		before, unauth := len(w.honest.ConfigPeers()), w.honest.Unauthorized.Load()
		if err := exchange(t, c); err != nil {
			t.Fatalf("h3=%v: after a rotation: %v", h3, err)
		}
		peers := w.honest.ConfigPeers()
		if w.honest.Unauthorized.Load() != unauth+1 || len(peers) != before+2 {
			t.Fatalf("h3=%v: %d 401s, %d fetches after the rotation, want 1 and 2 (tunnel and relay)",
				h3, w.honest.Unauthorized.Load()-unauth, len(peers)-before)
		}
		for _, p := range peers {
			if host, _, _ := net.SplitHostPort(p); host != "127.0.0.1" {
				t.Errorf("h3=%v: a configs fetch came from %s, not the proxy (127.0.0.1)", h3, p)
			}
		}
	}
}

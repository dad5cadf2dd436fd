package target_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

// testZone is the local zone of the tests.
const testZone = `$ORIGIN zone.test.
$TTL 300
@       IN SOA ns.zone.test. admin.zone.test. 1 3600 600 86400 60
@       IN NS  ns
ns      IN A   192.0.2.53
www     IN A   192.0.2.1
www     IN AAAA 2001:db8::1
alias   IN CNAME www
*.wild  IN TXT "wildcard"
a.b.c   IN A   192.0.2.3
`

func mustZone(t testing.TB) *target.Zone {
	t.Helper()
	z, err := target.ParseZone(bytes.NewReader([]byte(testZone)), "", "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// newChain is target.NewChain for tests.
func newChain(t testing.TB, c target.ChainConfig) *target.Chain {
	t.Helper()
	ch, err := target.NewChain(c)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// testServer is a target serving h on real sockets, with clients for both
// transports.
type testServer struct {
	url string
	tls *tls.Config // trusts the server's CA
	h2  *http.Client
	h3  *http.Client
}

func serve(t testing.TB, h http.Handler) *testServer {
	t.Helper()
	ca := testca.New(t)
	srv := &httpserve.Server{Addr: "127.0.0.1:0", Handler: h, TLSConfig: ca.ServerTLS(t)}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	h2t := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}
	h3t := &http3.Transport{TLSClientConfig: ca.ClientTLS()}
	t.Cleanup(func() {
		h2t.CloseIdleConnections()
		h3t.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{
		url: "https://" + srv.BoundAddr(),
		tls: ca.ClientTLS(),
		h2:  &http.Client{Transport: h2t, Timeout: 10 * time.Second},
		h3:  &http.Client{Transport: h3t, Timeout: 10 * time.Second},
	}
}

func (s *testServer) clients() map[string]*http.Client {
	return map[string]*http.Client{"h2": s.h2, "h3": s.h3}
}

// post sends body with content type ct and returns the response and body.
func post(t testing.TB, c *http.Client, url, ct string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return do(t, c, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// fetchConfig gets the target's current config.
func fetchConfig(t testing.TB, c *http.Client, base string) *odoh.Config {
	t.Helper()
	resp, body := do(t, c, mustRequest(t, http.MethodGet, base+odoh.ConfigsPath))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("configs: status %d", resp.StatusCode)
	}
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil {
		t.Fatalf("configs: %v", err)
	}
	return cfgs[0]
}

func mustRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// query builds a DNS query with the given ID.
func query(t testing.TB, name string, qtype uint16, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.Id = id
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// odohExchange seals a query to cfg, posts it and returns the status, the
// response and the decrypted answer (nil unless 200).
func odohExchange(t testing.TB, c *http.Client, url string, cfg *odoh.Config, wire []byte) (*http.Response, *dns.Msg, []byte) {
	t.Helper()
	msg, qctx, err := odoh.SealQuery(cfg, wire)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, c, url+odoh.QueryPath, odoh.ContentType, msg)
	if resp.StatusCode != http.StatusOK {
		return resp, nil, body
	}
	plain, err := qctx.OpenResponse(body)
	if err != nil {
		t.Fatalf("opening response: %v", err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(plain); err != nil {
		t.Fatalf("unpacking answer: %v", err)
	}
	return resp, m, body
}

// deadUDP returns the address of a UDP socket that never answers.
func deadUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// fakeClock is an injectable clock.
type fakeClock struct{ t atomicTime }

func (c *fakeClock) Now() time.Time          { return c.t.Load() }
func (c *fakeClock) Set(t time.Time)         { c.t.Store(t) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Store(c.t.Load().Add(d)) }

type atomicTime struct{ v atomic.Int64 }

func (a *atomicTime) Load() time.Time   { return time.Unix(0, a.v.Load()) }
func (a *atomicTime) Store(t time.Time) { a.v.Store(t.UnixNano()) }

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type atomicInt = atomic.Int64

package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

const (
	targetName = "odoh-target.test"
	proxyName  = "odoh-proxy.test"
)

// stack is a test target and proxy on loopback TLS (h2 + h3), reachable
// by name through the client's Resolve map, never through DNS.
type stack struct {
	ca      *testca.CA
	target  *odohtest.Target
	tsrv    *odohtest.Server
	proxies []*odohtest.Proxy
	psrvs   []*odohtest.Server
	resolve map[string]string
}

func newStack(t testing.TB, nproxies int) *stack {
	t.Helper()
	s := &stack{ca: testca.New(t), target: odohtest.NewTarget(t), resolve: map[string]string{}}
	s.tsrv = odohtest.Serve(t, s.ca, s.target, targetName)
	s.resolve[s.targetHost()] = s.tsrv.Addr
	for i := range nproxies {
		p := odohtest.NewProxy(s.ca, s.resolve)
		name := fmt.Sprintf("p%d.%s", i, proxyName)
		srv := odohtest.Serve(t, s.ca, p, name)
		s.resolve[name+":"+srv.Port()] = srv.Addr
		s.proxies = append(s.proxies, p)
		s.psrvs = append(s.psrvs, srv)
	}
	return s
}

func (s *stack) targetHost() string { return targetName + ":" + s.tsrv.Port() }
func (s *stack) targetURL() string  { return "https://" + s.targetHost() + "/dns-query" }
func (s *stack) proxyURL(i int) string {
	return fmt.Sprintf("https://p%d.%s:%s/dns-query{?targethost,targetpath}", i, proxyName, s.psrvs[i].Port())
}

func (s *stack) options(h3 bool) client.Config {
	o := client.Config{
		Targets: []string{s.targetURL()},
		HTTP3:   h3,
		RootCAs: s.ca.Pool(),
		Resolve: s.resolve,
		Timeout: 5 * time.Second,
	}
	for i := range s.psrvs {
		o.Proxies = append(o.Proxies, s.proxyURL(i))
	}
	return o
}

func (s *stack) client(t testing.TB, o client.Config) *client.Client {
	t.Helper()
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func protos(t *testing.T, f func(t *testing.T, h3 bool)) {
	for _, h3 := range []bool{false, true} {
		name := "h2"
		if h3 {
			name = "h3"
		}
		t.Run(name, func(t *testing.T) { f(t, h3) })
	}
}

func TestExchange(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		s := newStack(t, 1)
		c := s.client(t, s.options(h3))
		q := query("www.example.", dns.TypeA)
		q.Id = 4242
		a, err := c.Exchange(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Id != 4242 || q.Id != 4242 {
			t.Errorf("answer ID %d, query ID %d, want 4242 both", a.Id, q.Id)
		}
		if got := s.target.LastQueryID.Load(); got != 0 {
			t.Errorf("query travelled with ID %d, want 0", got)
		}
		if len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
			t.Fatalf("answer %v", a.Answer)
		}
		h := s.target.LastHeaders()
		if h.Get("Content-Type") != odoh.ContentType || h.Get("Accept") != odoh.ContentType {
			t.Errorf("content headers %v", h)
		}
		if h.Get("Cache-Control") != "no-cache, no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		for _, k := range []string{"User-Agent", "Cookie", "Authorization", "Accept-Encoding"} {
			if _, ok := s.proxies[0].LastHeaders()[k]; ok {
				t.Errorf("client sent %s: %q", k, s.proxies[0].LastHeaders().Get(k))
			}
		}
		if s.proxies[0].Requests.Load() == 0 {
			t.Error("query did not go through the proxy")
		}
		// NXDOMAIN is an answer, not an error.
		a, err = c.Exchange(t.Context(), query("foo.nx.", dns.TypeA))
		if err != nil || a.Rcode != dns.RcodeNameError {
			t.Fatalf("nx: %v %v", a, err)
		}
		r, err := c.Do(t.Context(), mustPack(t, query("x.example.", dns.TypeAAAA)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Proxy != s.proxyURL(0) || r.Target != s.targetURL() || r.Duration <= 0 {
			t.Errorf("result %+v", r)
		}
		// One fetch through the tunnel, one by the relay (the test proxy
		// caches nothing), then none: cached.
		if n := s.target.ConfigFetches.Load(); n != 2 {
			t.Errorf("%d config fetches, want 2 (tunnel and relay, then cached)", n)
		}
		if n := s.proxies[0].Tunnels.Load(); n != 1 {
			t.Errorf("%d tunnels, want 1", n)
		}
	})
}

func mustPack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefreshOn401(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		s := newStack(t, 1)
		c := s.client(t, s.options(h3))
		if _, err := c.Exchange(t.Context(), query("warm.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		s.target.Rotate(t)
		const n = 32
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := c.Exchange(t.Context(), query(fmt.Sprintf("q%d.example.", i), dns.TypeA))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := s.target.ConfigFetches.Load(); got != 4 {
			t.Errorf("%d config fetches, want 4 (tunnel and relay: initial + exactly one refresh)", got)
		}
		if s.target.Unauthorized.Load() == 0 {
			t.Error("no 401 seen: the test did not exercise rotation")
		}
	})
}

func TestStatic401IsFinal(t *testing.T) {
	s := newStack(t, 1)
	b, err := odoh.MarshalConfigs(s.target.Config())
	if err != nil {
		t.Fatal(err)
	}
	o := s.options(false)
	o.ConfigSource, o.StaticConfigs = client.ConfigStatic, b
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("a.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	s.target.Rotate(t)
	_, err = c.Exchange(t.Context(), query("a.example.", dns.TypeA))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || !errors.Is(err, odoh.ErrKeyMismatch) {
		t.Fatalf("err = %v, want HTTP 401 and odoh.ErrKeyMismatch", err)
	}
	if s.target.ConfigFetches.Load() != 0 {
		t.Error("static configs were fetched")
	}
}

func TestResponseDefects(t *testing.T) {
	testCases := []struct {
		name   string
		defect odohtest.Defect
		want   error
	}{
		{"content type", odohtest.DefectContentType, client.ErrBadResponse},
		{"type byte", odohtest.DefectTypeByte, odoh.ErrMalformed},
		{"nonce length", odohtest.DefectNonceLength, client.ErrBadResponse},
		{"non-zero padding", odohtest.DefectPadding, odoh.ErrMalformed},
		{"garbage", odohtest.DefectGarbage, client.ErrBadResponse},
		{"redirect", odohtest.DefectRedirect, client.ErrRedirect},
	}
	protos(t, func(t *testing.T, h3 bool) {
		s := newStack(t, 1)
		c := s.client(t, s.options(h3))
		if _, err := c.Exchange(t.Context(), query("ok.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range testCases {
			t.Run(tc.name, func(t *testing.T) {
				s.target.SetDefect(tc.defect)
				defer s.target.SetDefect(odohtest.DefectNone)
				_, err := c.Exchange(t.Context(), query("d.example.", dns.TypeA))
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		if n := s.target.RedirectHits.Load(); n != 0 {
			t.Errorf("redirect followed %d times", n)
		}
		// The padding defect must be caught by the padding check itself:
		// without the defect the same crafted path decrypts fine.
	})
}

func TestBadRequestNotRetried(t *testing.T) {
	s := newStack(t, 2)
	c := s.client(t, s.options(false))
	if _, err := c.Exchange(t.Context(), query("ok.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	s.target.SetDefect(odohtest.DefectBadRequest)
	before := s.target.Queries.Load()
	_, err := c.Exchange(t.Context(), query("bad.example.", dns.TypeA))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Fatalf("err = %v, want HTTP 400", err)
	}
	if n := s.target.Queries.Load() - before; n != 1 {
		t.Errorf("target saw %d posts, want 1 (no retry on 400)", n)
	}
}

func TestFailover(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		s := newStack(t, 3)
		s.psrvs[0].Close()            // gone: connection refused
		s.proxies[1].Down.Store(true) // answers 503
		c := s.client(t, s.options(h3))
		for i := range 20 {
			r, err := c.Do(t.Context(), mustPack(t, query(fmt.Sprintf("f%d.example.", i), dns.TypeA)))
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			if r.Proxy != s.proxyURL(2) {
				t.Fatalf("answered via %s", r.Proxy)
			}
		}
	})
}

func TestAllProxiesDown(t *testing.T) {
	s := newStack(t, 2)
	s.proxies[0].Down.Store(true)
	s.proxies[1].Down.Store(true)
	c := s.client(t, s.options(false))
	_, err := c.Exchange(t.Context(), query("x.example.", dns.TypeA))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want HTTP 503", err)
	}
	if strings.Contains(err.Error(), "targethost") {
		t.Errorf("error names the target query string: %v", err)
	}
}

// Configs through the relay alone are used only for a target with a key
// pin, and then only the pinned config.
func TestConfigViaRelay(t *testing.T) {
	s := newStack(t, 1)
	o := s.options(false)
	o.ConfigSource = client.ConfigViaRelay
	if _, err := client.New(o); err == nil || !strings.Contains(err.Error(), "pin its config key") {
		t.Fatalf("relay without a key pin: err = %v", err)
	}
	o.Pins = []client.Pin{{Host: targetName, KeyID: s.target.Config().KeyID()}}
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("v.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	// The relay fetched the configs: the proxy saw two requests (configs
	// and query), the target one config fetch.
	if n := s.proxies[0].Requests.Load(); n != 2 {
		t.Errorf("proxy saw %d requests, want 2", n)
	}
	if n := s.target.ConfigFetches.Load(); n != 1 {
		t.Errorf("%d config fetches", n)
	}
}

func TestConfigs(t *testing.T) {
	s := newStack(t, 1)
	s.target.MaxAge = 120
	c := s.client(t, s.options(false))
	tc, err := c.Configs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(tc) != 1 || len(tc[0].Configs) != 1 || !tc[0].Configs[0].Equal(s.target.Config()) || tc[0].MaxAge != 2*time.Minute {
		t.Fatalf("configs %+v", tc)
	}
}

func TestConfigExpiry(t *testing.T) {
	s := newStack(t, 1)
	s.target.MaxAge = 0 // clamped to MinConfigTTL: no fetch per query
	c := s.client(t, s.options(false))
	for range 5 {
		if _, err := c.Exchange(t.Context(), query("e.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.target.ConfigFetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (tunnel and relay, once)", n)
	}
}

func TestNoProxyRefused(t *testing.T) {
	s := newStack(t, 0)
	o := s.options(false)
	if _, err := client.New(o); !errors.Is(err, client.ErrNoProxy) {
		t.Fatalf("err = %v, want ErrNoProxy", err)
	}
	o.Direct = true
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("d.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
}

func TestSameOperatorRefused(t *testing.T) {
	testCases := []struct {
		name, proxy, target string
		refused             bool
	}{
		{"same domain", "https://relay.example.com/dns-query", "https://odoh.example.com/dns-query", true},
		{"public suffix", "https://a.github.io/p", "https://b.github.io/dns-query", false},
		{"same co.uk domain", "https://r.example.co.uk/p", "https://t.example.co.uk/dns-query", true},
		{"different", "https://relay.example.net/p", "https://odoh.example.com/dns-query", false},
		{"same ip", "https://127.0.0.1:1/p", "https://127.0.0.1:2/dns-query", true},
		{"same ipv6", "https://[::1]:1/p", "https://[0:0::1]:2/dns-query", true},
		{"mapped ipv4", "https://[::ffff:10.0.0.1]/p", "https://10.0.0.1/dns-query", true},
		{"case and dot", "https://R.Example.COM./p", "https://t.example.com/dns-query", true},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			o := client.Config{Proxies: []string{tc.proxy}, Targets: []string{tc.target}}
			c, err := client.New(o)
			if tc.refused != errors.Is(err, client.ErrSameOperator) {
				t.Fatalf("err = %v, refused want %v", err, tc.refused)
			}
			if err == nil {
				_ = c.Close()
			}
			if tc.refused {
				o.AllowSameOperator = true
				c, err := client.New(o)
				if err != nil {
					t.Fatalf("AllowSameOperator: %v", err)
				}
				_ = c.Close()
			}
		})
	}
}

func TestDialMapping(t *testing.T) {
	// A name missing from Resolve must not be looked up in tests; one that
	// is present dials the mapped address. Checked through a plain IP URL
	// to the same server too.
	s := newStack(t, 1)
	o := s.options(false)
	_, port, _ := net.SplitHostPort(s.tsrv.Addr)
	o.Targets = []string{"https://127.0.0.1:" + port + "/dns-query"}
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("ip.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
}

func TestTimeout(t *testing.T) {
	s := newStack(t, 1)
	o := s.options(false)
	o.Timeout = 300 * time.Millisecond
	// A proxy that accepts TCP but never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	o.Proxies = []string{"https://hang.proxy.test/dns-query"}
	o.Resolve["hang.proxy.test:443"] = ln.Addr().String()
	c := s.client(t, o)
	_, err = c.Exchange(context.Background(), query("t.example.", dns.TypeA))
	// The query's own deadline ended it, while the configs tunnel hung in
	// its TLS handshake with the proxy (DialTimeout is 2 s, Timeout 0.3 s).
	if !errors.Is(err, context.DeadlineExceeded) || client.Classify(err) != client.ReasonTimeout {
		t.Fatalf("err = %v (%s), want the query's deadline", err, client.Classify(err))
	}
}

// bigQuery returns a query for name padded with an EDNS(0) Padding option
// to exactly n bytes of wire format.
func bigQuery(t *testing.T, name string, n int) []byte {
	t.Helper()
	m := query(name, dns.TypeA)
	m.SetEdns0(dns.DefaultMsgSize, false)
	base := len(mustPack(t, m)) + 4 // the option header
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, n-base)})
	b := mustPack(t, m)
	if len(b) != n {
		t.Fatalf("built a %d-byte query, want %d", len(b), n)
	}
	return b
}

// A query that fits the suite's 16-bit limit unpadded but not padded to a
// whole 128-byte block is sent with the padding capped, not refused; one
// that does not fit at all is ErrTooLarge.
func TestNearLimitQuery(t *testing.T) {
	s := newStack(t, 1)
	c := s.client(t, s.options(false))
	// X25519/AES-128-GCM: 65535 - 32 (enc) - 16 (tag) = 65487 bytes of
	// plaintext, 4 of which are the two length fields.
	const limit = 65487 - 4
	for _, n := range []int{limit - 7, limit} {
		r, err := c.Do(t.Context(), bigQuery(t, "big.example.", n))
		if err != nil {
			t.Fatalf("%d-byte query: %v", n, err)
		}
		a := new(dns.Msg)
		if err := a.Unpack(r.DNS); err != nil || len(a.Answer) != 1 {
			t.Fatalf("%d-byte query: answer %v, %v", n, a, err)
		}
	}
	_, err := c.Do(t.Context(), bigQuery(t, "big.example.", limit+1))
	if !errors.Is(err, odoh.ErrTooLarge) {
		t.Fatalf("oversize query: err = %v, want ErrTooLarge", err)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// With a proxy and no ConfigSource, configs come through the proxy's
// tunnel (checked against its relay), on the first query and after a 401
// alike: the target never sees the client's address next to a query.
func TestConfigDefaultViaTunnel(t *testing.T) {
	s := newStack(t, 1)
	c := s.client(t, s.options(false))
	if _, err := c.Exchange(t.Context(), query("a.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if n := s.proxies[0].Requests.Load(); n != 3 {
		t.Fatalf("proxy saw %d requests, want 3 (CONNECT, relay and query)", n)
	}
	s.target.Rotate(t)
	if _, err := c.Exchange(t.Context(), query("b.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	// 401, CONNECT, relay, the retried query.
	if n := s.proxies[0].Requests.Load(); n != 7 {
		t.Errorf("proxy saw %d requests, want 7", n)
	}
	if n := s.target.ConfigFetches.Load(); n != 4 {
		t.Errorf("%d config fetches, want 4", n)
	}
	if n := s.proxies[0].Tunnels.Load(); n != 2 {
		t.Errorf("%d tunnels, want 2", n)
	}
}

// Configs from the target, when chosen with a proxy, are fetched again in
// the background before they expire, and never right after a 401 on the
// query path: that query fails, and a later one uses the configs fetched
// in the background.
func TestConfigFromTargetBackground(t *testing.T) {
	s := newStack(t, 1)
	o := s.options(false)
	o.ConfigSource = client.ConfigFromTarget
	c := s.client(t, o)
	client.SetFetchDelays(c, func(time.Duration) time.Duration { return time.Hour },
		func() time.Duration { return time.Second })
	if _, err := c.Exchange(t.Context(), query("a.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	s.target.Rotate(t)
	_, err := c.Exchange(t.Context(), query("b.example.", dns.TypeA))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || !errors.Is(err, odoh.ErrKeyMismatch) {
		t.Fatalf("err = %v, want a 401 with odoh.ErrKeyMismatch", err)
	}
	if n := s.target.ConfigFetches.Load(); n != 1 {
		t.Fatalf("%d config fetches right after the 401, want 1: fetched on the query path", n)
	}
	// The fetch is done once the client holds its configs, not when the
	// target has seen it.
	eventually(t, "the background fetch", func() bool {
		return bytes.Equal(client.CurrentKeyID(c, 0), s.target.Config().KeyID())
	})
	if n := s.target.ConfigFetches.Load(); n != 2 {
		t.Fatalf("%d config fetches, want 2", n)
	}
	if _, err := c.Exchange(t.Context(), query("c.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if n := s.proxies[0].Requests.Load(); n != 3 {
		t.Errorf("proxy saw %d requests, want 3 (the queries only)", n)
	}

	// Before expiry: here every 20 ms, with no query at all.
	c2 := s.client(t, o)
	client.SetFetchDelays(c2, func(ttl time.Duration) time.Duration {
		if ttl != time.Hour {
			t.Errorf("background fetch for a lifetime of %v, want the target's 1h", ttl)
		}
		return 20 * time.Millisecond
	}, func() time.Duration { return time.Hour })
	if _, err := c2.Exchange(t.Context(), query("d.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	before := s.target.ConfigFetches.Load()
	eventually(t, "background fetches", func() bool { return s.target.ConfigFetches.Load() >= before+3 })
	// That Close stops them is TestBackgroundFetchesStopAtClose's to show,
	// on synctest's clock: here a fetch in flight at Close may reach the
	// target any time later.
}

// In direct mode the target sees everything anyway: configs come from it,
// and a 401 is fetched again at once and the query retried.
func TestConfigDirectMode(t *testing.T) {
	s := newStack(t, 0)
	o := s.options(false)
	o.Direct = true
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("a.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	s.target.Rotate(t)
	if _, err := c.Exchange(t.Context(), query("b.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if n := s.target.ConfigFetches.Load(); n != 2 {
		t.Errorf("%d config fetches, want 2", n)
	}
}

// A proxy whose configs tunnel fails is the proxy's fault: it is avoided
// for its cooldown, not retried for every query.
func TestConfigFetchFailureBlamesProxy(t *testing.T) {
	s := newStack(t, 2)
	s.proxies[0].Down.Store(true)
	o := s.options(false)
	o.Cooldown = time.Minute
	for range 40 {
		c := s.client(t, o)
		if _, err := c.Exchange(t.Context(), query("w.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if s.proxies[0].Requests.Load() == 0 {
			continue // the relay of proxy 0 was not tried: try a new client
		}
		for i := range 20 {
			if _, err := c.Exchange(t.Context(), query(fmt.Sprintf("q%d.example.", i), dns.TypeA)); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.proxies[0].Requests.Load(); n != 1 {
			t.Fatalf("proxy 0 saw %d requests, want 1: its failed relay did not put it in cooldown", n)
		}
		return
	}
	t.Fatal("proxy 0 was never tried first")
}

// A relay stamp's certificate hashes are enforced on top of the usual
// verification, and its address is dialled for its host: here the stamp
// names localhost on a port where nothing listens, and only its Addr leads
// to the proxy.
func TestRelayStampPinsAndAddr(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		s := newStack(t, 1)
		blk, _ := pem.Decode(s.ca.CertPEM())
		if blk == nil {
			t.Fatal("no CA certificate")
		}
		caCert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", s.psrvs[0].Addr, &tls.Config{RootCAs: s.ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		_ = conn.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, deadPort, _ := net.SplitHostPort(ln.Addr().String())
		_ = ln.Close()

		hash := func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
		wrong := hash([]byte("not a certificate"))
		testCases := []struct {
			name   string
			hashes [][]byte
			ok     bool
		}{
			{"no pin", nil, true},
			{"ca pin", [][]byte{hash(caCert.RawTBSCertificate)}, true},
			{"leaf pin", [][]byte{hash(leaf.RawTBSCertificate)}, true},
			{"one of two", [][]byte{wrong, hash(leaf.RawTBSCertificate)}, true},
			{"wrong pin", [][]byte{wrong}, false},
			{"pin of the whole certificate", [][]byte{hash(leaf.Raw)}, false},
		}
		for _, tc := range testCases {
			t.Run(tc.name, func(t *testing.T) {
				st := client.Stamp{Proto: client.StampODoHRelay, Addr: s.psrvs[0].Addr, Hashes: tc.hashes,
					Host: "localhost:" + deadPort, Path: "/dns-query"}
				o := s.options(h3)
				o.Proxies = []string{st.String()}
				before := s.proxies[0].Requests.Load()
				c := s.client(t, o)
				_, err := c.Exchange(t.Context(), query("pin.example.", dns.TypeA))
				if tc.ok {
					if err != nil {
						t.Fatal(err)
					}
					if s.proxies[0].Requests.Load() == before {
						t.Fatal("the query did not reach the proxy")
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), "pinned TBSCertificate hashes") {
					t.Fatalf("err = %v, want a pin mismatch", err)
				}
				if !errors.Is(err, client.ErrPinMismatch) {
					t.Errorf("err = %v, want ErrPinMismatch", err)
				}
				if n := s.proxies[0].Requests.Load() - before; n != 0 {
					t.Errorf("proxy served %d requests over an unpinned connection", n)
				}
			})
		}
	})
}

func TestRelayStampBadFields(t *testing.T) {
	for _, st := range []client.Stamp{
		{Proto: client.StampODoHRelay, Addr: "relay.example", Host: "relay.example", Path: "/p"},
		{Proto: client.StampODoHRelay, Addr: "192.0.2.1:99999", Host: "relay.example", Path: "/p"},
		{Proto: client.StampODoHRelay, Hashes: [][]byte{{1, 2, 3}}, Host: "relay.example", Path: "/p"},
	} {
		_, err := client.New(client.Config{Proxies: []string{st.String()}, Targets: []string{"https://odoh.example.net/dns-query"}})
		if err == nil {
			t.Errorf("stamp %+v accepted", st)
		}
	}
}

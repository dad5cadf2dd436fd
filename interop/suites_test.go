package interop

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
	"github.com/odohd/odoh/target"
)

// TestSuitesEndToEnd runs every HPKE suite family through the real proxy and
// target packages on real sockets (TLS, HTTP/2) with their default limits: a
// client lookup with configs relayed by the proxy, and the largest query the
// suite can frame, which both must pass. (The binaries publish the default
// suite only, so this runs the packages in-process.) Size limits written per
// role once disagreed: a 64-byte HKDF-SHA512 key ID passed the proxy and got
// 413 from the target.
func TestSuitesEndToEnd(t *testing.T) {
	ca := testca.New(t)
	zone, err := target.ParseZone(strings.NewReader(`example.test. 300 IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
www.example.test. 300 IN A 192.0.2.80
`), "", "suites.zone")
	if err != nil {
		t.Fatal(err)
	}
	for _, suite := range []odoh.Suite{
		odoh.DefaultSuite(),
		{KEM: odoh.KEMX25519, KDF: odoh.KDFHKDFSHA512, AEAD: odoh.AEADAES256GCM},
		{KEM: odoh.KEMP256, KDF: odoh.KDFHKDFSHA512, AEAD: odoh.AEADChaCha20Poly1305},
		{KEM: odoh.KEMP256, KDF: odoh.KDFHKDFSHA384, AEAD: odoh.AEADAES128GCM},
	} {
		t.Run(suite.String(), func(t *testing.T) {
			keys, err := target.NewKeyring(target.KeyringConfig{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			chain, err := target.NewChain(target.ChainConfig{Zone: zone})
			if err != nil {
				t.Fatal(err)
			}
			h, err := target.New(target.Config{Keys: keys, Resolver: chain})
			if err != nil {
				t.Fatal(err)
			}
			targetAddr := serveInProcess(t, ca, h)
			relay, err := proxy.New(proxy.Config{Policy: proxy.Policy{Allow: []string{targetAddr}}, RootCAs: ca.Pool()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { relay.Close() })
			proxyAddr := serveInProcess(t, ca, relay)

			// A lookup, configs through the proxy (its tunnel, checked against its relay).
			c, err := client.New(client.Config{
				Proxies:           []string{"https://" + proxyAddr + "/dns-query{?targethost,targetpath}"},
				Targets:           []string{"https://" + targetAddr + "/dns-query"},
				RootCAs:           ca.Pool(),
				AllowSameOperator: true, // both on 127.0.0.1
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			res, err := c.Do(t.Context(), query("www.example.test", dns.TypeA))
			if err != nil {
				t.Fatal(err)
			}
			wantA(t, res.DNS, "192.0.2.80")
			tc, err := c.Configs(t.Context())
			if err != nil || len(tc) != 1 || len(tc[0].Configs) != 1 {
				t.Fatalf("configs %+v, %v", tc, err)
			}
			cfg := tc[0].Configs[0]
			if cfg.Suite() != suite || len(cfg.KeyID()) == 0 {
				t.Fatalf("config %v, want suite %v", cfg, suite)
			}

			// The largest query of the suite, padded up to its size limit.
			q := query("www.example.test", dns.TypeA)
			probe, _, err := odoh.SealQueryPadded(cfg, q, 0)
			if err != nil {
				t.Fatal(err)
			}
			body, qctx, err := odoh.SealQueryPadded(cfg, q, odoh.MaxQuerySizeFor(suite)-len(probe))
			if err != nil {
				t.Fatal(err)
			}
			if len(body) != odoh.MaxQuerySizeFor(suite) {
				t.Fatalf("largest query is %d bytes, want %d", len(body), odoh.MaxQuerySizeFor(suite))
			}
			tr := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}
			t.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			u := "https://" + proxyAddr + "/dns-query?" + url.Values{"targethost": {targetAddr}, "targetpath": {"/dns-query"}}.Encode()
			resp, err := hc.Post(u, odoh.ContentType, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var rb bytes.Buffer
			if _, err := rb.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d-byte query: %s (Proxy-Status %q)", len(body), resp.Status, resp.Header.Get("Proxy-Status"))
			}
			wire, err := qctx.OpenResponse(rb.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			wantA(t, wire, "192.0.2.80")
		})
	}
}

// serveInProcess serves h over TLS (HTTP/2 and HTTP/3) on a free loopback
// port until the test ends, and returns its address.
func serveInProcess(t *testing.T, ca *testca.CA, h http.Handler) string {
	t.Helper()
	srv := &httpserve.Server{Addr: "127.0.0.1:0", Handler: h, TLSConfig: ca.ServerTLS(t)}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return srv.BoundAddr()
}

// wantA checks that a DNS answer in wire form holds one A record for ip.
func wantA(t *testing.T, wire []byte, ip string) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 {
		t.Fatalf("answer %v", m)
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok || !a.A.Equal(net.ParseIP(ip)) {
		t.Fatalf("answer %v, want A %s", m.Answer[0], ip)
	}
}

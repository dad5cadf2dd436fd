package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testnet"
	"github.com/odohd/odoh/odoh"
)

// clientHeaders are what a client may send that identifies it or its
// software; no relay path may forward any of them.
var clientHeaders = http.Header{
	"Cookie":              {"session=abc"},
	"Authorization":       {"Bearer secret"},
	"Proxy-Authorization": {"Basic cHJveHk6c2VjcmV0"},
	"User-Agent":          {"client-ua/1.0"},
	"X-Forwarded-For":     {"192.0.2.7"},
	"X-Forwarded-Host":    {"client.example"},
	"X-Forwarded-Proto":   {"https"},
	"Forwarded":           {"for=192.0.2.7;proto=https"},
	"X-Real-Ip":           {"192.0.2.7"},
	"True-Client-Ip":      {"192.0.2.7"},
	"Cf-Connecting-Ip":    {"192.0.2.7"},
	"X-Client-Ip":         {"192.0.2.7"},
	"Via":                 {"1.1 client-proxy"},
	"Traceparent":         {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	"Tracestate":          {"vendor=opaque"},
	"B3":                  {"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"},
	"X-B3-Traceid":        {"80f198ee56343ba864fe8b2a57d3eff7"},
	"X-Request-Id":        {"req-1"},
	"X-Amzn-Trace-Id":     {"Root=1-5759e988"},
	"Referer":             {"https://client.example/"},
	"Origin":              {"https://client.example"},
	"Accept-Language":     {"de-CH"},
	"Accept-Encoding":     {"br"},
	"Dnt":                 {"1"},
	"Cache-Control":       {"no-cache, no-store"},
	"X-Custom":            {"anything"},
}

// TestForwardStripsClientHeaders sends every identifying header a client
// might and checks that the target sees only the proxy's own fixed set,
// and that the client sees only the allowed response headers.
func TestForwardStripsClientHeaders(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		h := w.Header()
		h.Set("Content-Type", odoh.ContentType)
		h.Set("Set-Cookie", "track=1")
		h.Set("Alt-Svc", `h3=":1"; ma=1`)
		h.Set("Server", "target/1.0")
		h.Set("X-Target-Secret", "s")
		h.Set("Location", "https://elsewhere.example/")
		_, _ = w.Write(body)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})

	body := []byte("an ODoH query, opaque to the proxy")
	for _, proto := range []string{"h2", "h3"} {
		t.Run(proto, func(t *testing.T) {
			c := tp.h2
			if proto == "h3" {
				c = tp.h3
			}
			before := len(tgt.requests())
			resp, got := post(t, c, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), body, clientHeaders)
			wantProxyStatus(t, resp, 200, relayed)
			if !bytes.Equal(got, body) {
				t.Errorf("body = %q, want the target's %q", got, body)
			}
			wantMajor := map[string]int{"h2": 2, "h3": 3}[proto]
			if resp.ProtoMajor != wantMajor {
				t.Errorf("client protocol = %s, want major %d", resp.Proto, wantMajor)
			}
			for _, k := range []string{"Set-Cookie", "Server", "X-Target-Secret", "Location"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("target's %s reached the client: %q", k, v)
				}
			}
			if v := resp.Header.Get("Alt-Svc"); strings.Contains(v, `":1"`) {
				t.Errorf("target's Alt-Svc reached the client: %q", v)
			}
			if resp.Header.Get("Content-Type") != odoh.ContentType {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			reqs := tgt.requests()
			if len(reqs) != before+1 {
				t.Fatalf("target saw %d requests, want 1", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			if r.method != http.MethodPost || r.path != "/dns-query" || r.rawQuery != "" || r.host != tgt.hostPort() {
				t.Errorf("upstream request %s %s?%s host %s", r.method, r.path, r.rawQuery, r.host)
			}
			if !bytes.Equal(r.body, body) {
				t.Errorf("upstream body = %q", r.body)
			}
			var keys []string
			for k := range r.header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"Accept", "Content-Length", "Content-Type", "User-Agent"}; !slices.Equal(keys, want) {
				t.Errorf("upstream headers = %v, want exactly %v", keys, want)
			}
			if ua := r.header.Get("User-Agent"); ua != DefaultUserAgent {
				t.Errorf("upstream User-Agent = %q", ua)
			}
			if r.header.Get("Content-Type") != odoh.ContentType || r.header.Get("Accept") != odoh.ContentType {
				t.Errorf("upstream Content-Type/Accept = %q/%q", r.header.Get("Content-Type"), r.header.Get("Accept"))
			}
			for _, v := range []string{"192.0.2.7", "secret", "abc", "client", "127.0.0.1:" + fmt.Sprint(tp.srv.TCPAddr().Port)} {
				for k, vv := range r.header {
					if strings.Contains(strings.Join(vv, ","), v) {
						t.Errorf("upstream header %s carries client data %q", k, v)
					}
				}
			}
		})
	}
	if logs := tp.logs.String(); logs != "" {
		t.Errorf("requests were logged:\n%s", logs)
	}
}

// TestRequestErrors covers RFC 9230 part 1 D1-D3 and F: every malformed
// request is a 4xx with error=http_request_error, and the target sees none.
func TestRequestErrors(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, MaxRequestBody: 512})
	good := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	testCases := []struct {
		name   string
		method string
		url    string
		ctype  string
		body   io.Reader
		status int
	}{
		{"GET", http.MethodGet, good, odoh.ContentType, nil, 405},
		{"PUT", http.MethodPut, good, odoh.ContentType, strings.NewReader("x"), 405},
		{"no content type", http.MethodPost, good, "", strings.NewReader("x"), 415},
		{"wrong content type", http.MethodPost, good, "application/dns-message", strings.NewReader("x"), 415},
		{"missing targethost", http.MethodPost, tp.base + "/dns-query?targetpath=%2Fdns-query", odoh.ContentType, strings.NewReader("x"), 400},
		{"missing targetpath", http.MethodPost, tp.base + "/dns-query?targethost=" + tgt.hostPort(), odoh.ContentType, strings.NewReader("x"), 400},
		{"no query", http.MethodPost, tp.base + "/dns-query", odoh.ContentType, strings.NewReader("x"), 400},
		{"repeated targethost", http.MethodPost, good + "&targethost=" + tgt.hostPort(), odoh.ContentType, strings.NewReader("x"), 400},
		{"repeated targetpath", http.MethodPost, good + "&targetpath=%2Fdns-query", odoh.ContentType, strings.NewReader("x"), 400},
		{"empty targethost", http.MethodPost, tp.queryURL("", "%2Fdns-query"), odoh.ContentType, strings.NewReader("x"), 400},
		{"empty targetpath", http.MethodPost, tp.queryURL(tgt.hostPort(), ""), odoh.ContentType, strings.NewReader("x"), 400},
		{"bad escape", http.MethodPost, tp.queryURL(tgt.hostPort(), "%2"), odoh.ContentType, strings.NewReader("x"), 400},
		{"empty body", http.MethodPost, good, odoh.ContentType, nil, 400},
		{"body over cap", http.MethodPost, good, odoh.ContentType, bytes.NewReader(make([]byte, 513)), 413},
		{"streamed body over cap", http.MethodPost, good, odoh.ContentType, io.MultiReader(bytes.NewReader(make([]byte, 600))), 413},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, _ := do(t, tp.h2, req)
			wantProxyStatus(t, resp, tc.status, odoh.ProxyHTTPRequestError)
			if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	// The exact cap is accepted, and the content type is matched
	// case-insensitively.
	resp, _ := post(t, tp.h2, good, make([]byte, 512), http.Header{"Content-Type": {"Application/Oblivious-DNS-Message"}})
	wantProxyStatus(t, resp, 200, relayed)
	if n := len(tgt.requests()); n != 1 {
		t.Errorf("target saw %d requests, want only the valid one", n)
	}
	if resp, _ := do(t, tp.h2, mustRequest(t, http.MethodGet, tp.base+"/other", nil)); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTargetResponsesRelayed checks D8-D10 and D13: whatever the target
// answers reaches the client with status and body unchanged, except a 2xx
// without the ODoH type (502), and redirects are relayed, not followed.
func TestTargetResponsesRelayed(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	decoy := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort(), decoy.hostPort()}}})
	testCases := []struct {
		name       string
		status     int
		ctype      string
		body       string
		location   string
		wantStatus int
		wantPS     odoh.ProxyError
		wantBody   string
	}{
		{"401 key mismatch", 401, "text/plain", "unknown key id", "", 401, relayed, "unknown key id"},
		{"400", 400, "", "bad message", "", 400, relayed, "bad message"},
		{"500", 500, "text/plain", "boom", "", 500, relayed, "boom"},
		{"503", 503, "", "", "", 503, relayed, ""},
		{"204 empty", 204, "", "", "", 502, odoh.ProxyHTTPProtocolError, ""},
		{"200 wrong type", 200, "text/plain", "hello", "", 502, odoh.ProxyHTTPProtocolError, ""},
		{"200 odoh", 200, odoh.ContentType, "sealed", "", 200, relayed, "sealed"},
		{"307 redirect", 307, "", "moved", "https://" + decoy.hostPort() + "/dns-query", 307, relayed, "moved"},
		{"308 redirect", 308, "", "moved", "https://" + decoy.hostPort() + "/dns-query", 308, relayed, "moved"},
		{"302 redirect", 302, "", "", "https://" + decoy.hostPort() + "/dns-query", 302, relayed, ""},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				if tc.location != "" {
					w.Header().Set("Location", tc.location)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			resp, body := post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q"), nil)
			wantProxyStatus(t, resp, tc.wantStatus, tc.wantPS)
			if tc.wantStatus != 502 && string(body) != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if tc.wantStatus == 502 && !strings.Contains(resp.Header.Get("Proxy-Status"), fmt.Sprintf("received-status=%d", tc.status)) {
				t.Errorf("Proxy-Status %q does not name the received status", resp.Header.Get("Proxy-Status"))
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("Location relayed: %q", loc)
			}
		})
	}
	if n := len(decoy.requests()); n != 0 {
		t.Errorf("a redirect was followed: the decoy saw %d requests", n)
	}
}

// TestTargetCacheControlRelayed checks the Cache-Control a client gets
// for each the target may send: its own values, or no-store for none and
// for an empty field (which net/http sends as "Cache-Control: ").
func TestTargetCacheControlRelayed(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	for _, tc := range []struct {
		name string
		sent []string
		want []string
	}{
		{"none", nil, []string{"no-store"}},
		{"max-age", []string{"max-age=60"}, []string{"max-age=60"}},
		{"empty", []string{""}, []string{"no-store"}},
		{"empty and max-age", []string{"", "max-age=5"}, []string{"max-age=5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", odoh.ContentType)
				if tc.sent != nil {
					w.Header()["Cache-Control"] = tc.sent
				}
				_, _ = io.WriteString(w, "sealed")
			})
			resp, _ := post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q"), nil)
			wantProxyStatus(t, resp, 200, relayed)
			if got := resp.Header.Values("Cache-Control"); !slices.Equal(got, tc.want) {
				t.Errorf("Cache-Control %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUpstreamFailures covers D7 and D19: unreachable, broken or slow
// targets give 502/504 with a Proxy-Status error naming the cause. Each
// case has a proxy of its own in which only the limit under test is short
// and every other one keeps its default (seconds), and each target fails by
// an event (a closed port, a foreign certificate, a reply that is not TLS,
// silence until the proxy hangs up, an oversize body), so the answer can
// only come from the failure under test, however loaded the machine: with
// one shared set of short limits, a TLS handshake slowed by load ended the
// oversize-body case as connection_timeout.
func TestUpstreamFailures(t *testing.T) {
	ca := testca.New(t)
	otherCA := testca.New(t)
	wrongCert := startTarget(t, otherCA.ServerTLS(t))
	slow := startTarget(t, ca.ServerTLS(t))
	slow.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/warm" {
			return
		}
		<-r.Context().Done()
	})
	big := startTarget(t, ca.ServerTLS(t))
	big.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", odoh.ContentType)
		_, _ = w.Write(make([]byte, 2000))
	})
	// A port with nothing listening, held so that nobody else can.
	closed := testnet.RefusingAddr(t)
	// A TCP server that never says anything (TLS handshake timeout), until
	// the proxy hangs up.
	silent := listenTCP(t, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	})
	// A TCP server that answers in plain HTTP (not TLS).
	plain := listenTCP(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	})
	resolver := dnsServer(t, map[string]netip.Addr{})
	const short = 300 * time.Millisecond
	testCases := []struct {
		name   string
		host   string
		limit  func(*Config)
		status int
		kind   odoh.ProxyError
	}{
		{"connection refused", closed, nil, 502, odoh.ProxyConnectionRefused},
		{"certificate", wrongCert.hostPort(), nil, 502, odoh.ProxyTLSCertificateError},
		{"not TLS", plain, nil, 502, odoh.ProxyTLSProtocolError},
		{"TLS handshake timeout", silent, func(c *Config) { c.TLSHandshakeTimeout = short }, 502, odoh.ProxyConnectionTimeout},
		{"NXDOMAIN", "nx.test", nil, 502, odoh.ProxyDNSError},
		// ConnectTimeout bounds the name's lookup too.
		{"DNS timeout", "slow.test", func(c *Config) { c.ConnectTimeout = short }, 502, odoh.ProxyDNSTimeout},
		{"slow target", slow.hostPort(), func(c *Config) { c.ResponseTimeout = short }, 504, odoh.ProxyHTTPResponseTimeout},
		{"response over cap", big.hostPort(), func(c *Config) { c.MaxResponseBody = 1000 }, 502, odoh.ProxyHTTPResponseBodySize},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Policy:   Policy{Allow: []string{wrongCert.hostPort(), slow.hostPort(), big.hostPort(), closed, silent, plain, "nx.test", "slow.test"}},
				Resolver: resolver,
			}
			if tc.limit != nil {
				tc.limit(&cfg)
			}
			if tc.host == slow.hostPort() {
				slowTarget(t, ca, cfg, slow)
				return
			}
			tp := startProxy(t, ca, cfg)
			// Each failure is named by the limit that ended it; one that
			// no limit caught would leave the client waiting for its own
			// timeout.
			resp, _ := post(t, tp.h2, tp.queryURL(tc.host, "%2Fdns-query"), []byte("q"), nil)
			wantProxyStatus(t, resp, tc.status, tc.kind)
		})
	}
}

// slowTarget is TestUpstreamFailures' slow target: a query the target
// took and never answered is a 504 http_response_timeout once the
// proxy's ResponseTimeout (cfg's) has passed. The timeout bounds the
// whole exchange, connecting included, so the proxy connects first, with
// no deadline, and only the answer can be late. On a loaded machine the
// proxy may not even have sent the query within a short timeout (504 all
// the same, but not the case under test): then it runs again with twice
// the timeout, until the target has the query.
func slowTarget(t *testing.T, ca *testca.CA, cfg Config, slow *recordingTarget) {
	t.Helper()
	earlier := map[string]bool{} // the connections of earlier attempts' proxies
	for attempt := 1; ; attempt++ {
		tp := startProxy(t, ca, cfg)
		warmUp(t, tp, "https://"+slow.hostPort()+"/warm")
		reqs := slow.requests()
		conn := reqs[len(reqs)-1].remote // this proxy's connection
		resp, _ := post(t, tp.h2, tp.queryURL(slow.hostPort(), "%2Fdns-query"), []byte("q"), nil)
		wantProxyStatus(t, resp, http.StatusGatewayTimeout, odoh.ProxyHTTPResponseTimeout)
		var queries, elsewhere int
		for _, r := range slow.requests()[len(reqs):] {
			switch {
			case earlier[r.remote]: // an earlier query, late
			case r.remote != conn:
				elsewhere++
			case r.path != "/warm":
				queries++
			}
		}
		earlier[conn] = true
		if elsewhere != 0 || queries > 1 {
			t.Fatalf("the slow target saw %d queries on the warm connection and %d requests on others; want the one query on the warm connection", queries, elsewhere)
		}
		if queries == 1 {
			return
		}
		if attempt == 5 {
			t.Fatalf("the query never reached the target within a response timeout of %v", cfg.ResponseTimeout)
		}
		t.Logf("the query did not reach the target within %v (a loaded machine): again with twice that", cfg.ResponseTimeout)
		cfg.ResponseTimeout *= 2
	}
}

// warmUp has the proxy's upstream transport open its connection to the
// target of u (which must answer at once), so that later requests reuse it.
func warmUp(t *testing.T, tp *testProxy, u string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tp.h.upstream.RoundTrip(req)
	if err != nil {
		t.Fatalf("warming up the connection to %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func listenTCP(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}

// TestPolicy covers D5, D6: targets and ports outside the allowlist are
// 403 http_request_denied; names resolving to special addresses are 403
// destination_ip_prohibited, unless explicitly allowed.
func TestPolicy(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t, "evil.test", "localhost", "127.0.0.1"))
	port := fmt.Sprint(tgt.port)
	resolver := dnsServer(t, map[string]netip.Addr{
		"evil.test":   netip.MustParseAddr("127.0.0.1"),
		"mapped.test": netip.MustParseAddr("::ffff:127.0.0.1"),
		"ten.test":    netip.MustParseAddr("10.1.2.3"),
	})
	tp := startProxy(t, ca, Config{
		Resolver: resolver,
		Policy: Policy{Allow: []string{
			tgt.hostPort(), "evil.test:" + port, "mapped.test:" + port, "ten.test:" + port, "localhost:" + port, "public.example",
		}},
	})
	testCases := []struct {
		name, host string
		status     int
		kind       odoh.ProxyError
	}{
		{"allowed literal", tgt.hostPort(), 200, relayed},
		{"not allowlisted", "other.example", 403, odoh.ProxyHTTPRequestDenied},
		{"allowlisted host, other port", "public.example:8443", 403, odoh.ProxyHTTPRequestDenied},
		{"default port spelled out", "public.example:443", 502, odoh.ProxyDNSError}, // allowed; our resolver knows no such name
		{"name resolving to loopback", "evil.test:" + port, 403, odoh.ProxyDestinationIPProhibited},
		{"name resolving to mapped loopback", "mapped.test:" + port, 403, odoh.ProxyDestinationIPProhibited},
		{"name resolving to private", "ten.test:" + port, 403, odoh.ProxyDestinationIPProhibited},
		{"localhost", "localhost:" + port, 403, odoh.ProxyDestinationIPProhibited},
		{"allowlisted literal, other port", "127.0.0.1:1", 403, odoh.ProxyHTTPRequestDenied},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := post(t, tp.h2, tp.queryURL(tc.host, "%2Fdns-query"), []byte("q"), nil)
			wantProxyStatus(t, resp, tc.status, tc.kind)
		})
	}
	if n := len(tgt.requests()); n != 1 {
		t.Errorf("target saw %d requests, want 1 (the allowed literal)", n)
	}

	// An operator may let allowlisted names resolve to special addresses.
	if err := tp.h.SetPolicy(Policy{Allow: []string{"evil.test:" + port}, AllowSpecialAddrs: true}); err != nil {
		t.Fatal(err)
	}
	resp, _ := post(t, tp.h2, tp.queryURL("evil.test:"+port, "%2Fdns-query"), []byte("q"), nil)
	wantProxyStatus(t, resp, 200, relayed)
	// The reload dropped the literal entry.
	resp, _ = post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q"), nil)
	wantProxyStatus(t, resp, 403, odoh.ProxyHTTPRequestDenied)
	// A bad policy keeps the old one.
	if err := tp.h.SetPolicy(Policy{}); err == nil {
		t.Error("empty policy accepted")
	}
	resp, _ = post(t, tp.h2, tp.queryURL("evil.test:"+port, "%2Fdns-query"), []byte("q"), nil)
	wantProxyStatus(t, resp, 200, relayed)
}

// TestOpenRelay checks that an open relay still enforces ports and
// special addresses.
func TestOpenRelay(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	resolver := dnsServer(t, map[string]netip.Addr{"evil.test": netip.MustParseAddr("127.0.0.1")})
	tp := startProxy(t, ca, Config{Resolver: resolver, Policy: Policy{AllowOpen: true, OpenPorts: []uint16{443, uint16(tgt.port)}}})
	for _, tc := range []struct {
		host   string
		status int
		kind   odoh.ProxyError
	}{
		{tgt.hostPort(), 403, odoh.ProxyDestinationIPProhibited},
		{"evil.test:" + fmt.Sprint(tgt.port), 403, odoh.ProxyDestinationIPProhibited},
		{"[::1]:" + fmt.Sprint(tgt.port), 403, odoh.ProxyDestinationIPProhibited},
		{"192.0.2.1:" + fmt.Sprint(tgt.port), 403, odoh.ProxyDestinationIPProhibited},
		{"evil.test:8443", 403, odoh.ProxyHTTPRequestDenied},
	} {
		resp, _ := post(t, tp.h2, tp.queryURL(tc.host, "%2Fdns-query"), []byte("q"), nil)
		wantProxyStatus(t, resp, tc.status, tc.kind)
	}
	if n := len(tgt.requests()); n != 0 {
		t.Errorf("target saw %d requests", n)
	}
}

// TestSmuggling tries to steer the proxy to another host through
// targethost and targetpath. Nothing may reach the decoy, and the allowed
// target may only ever see its own path.
func TestSmuggling(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	decoy := startTarget(t, ca.ServerTLS(t))
	resolver := dnsServer(t, map[string]netip.Addr{"evil.test": netip.MustParseAddr("127.0.0.1")})
	tp := startProxy(t, ca, Config{Resolver: resolver, Policy: Policy{Allow: []string{tgt.hostPort()}}})
	T, D := tgt.hostPort(), decoy.hostPort()
	dport := fmt.Sprint(decoy.port)
	testCases := []struct {
		name       string
		host, path string // raw query values
		wantPath   string // "" = must not be forwarded
	}{
		{"RFC 6570 path", T, "%2Fdns-query", "/dns-query"},
		{"raw slash path", T, "/dns-query", "/dns-query"},
		{"encoded host", strings.ReplaceAll(T, ":", "%3A"), "%2Fdns-query", "/dns-query"},
		{"decoy literal", D, "%2Fdns-query", ""},
		{"userinfo in host", "user:pass@" + D, "/dns-query", ""},
		{"host@decoy", T + "@" + D, "/dns-query", ""},
		{"encoded @ in host", T + "%40" + D, "/dns-query", ""},
		{"host with path", T + "%2F@" + D, "/dns-query", ""},
		{"host with fragment", T + "%23@" + D, "/dns-query", ""},
		{"host with space", T + "%20" + D, "/dns-query", ""},
		{"host with CRLF", T + "%0D%0AHost:%20" + D, "/dns-query", ""},
		{"host with NUL", "127.0.0.1%00:" + fmt.Sprint(tgt.port), "/dns-query", ""},
		{"host with backslash", T + "%5C@" + D, "/dns-query", ""},
		{"trailing dot", "127.0.0.1.:" + fmt.Sprint(tgt.port), "/dns-query", ""},
		{"short IPv4", "127.1:" + dport, "/dns-query", ""},
		{"hex IPv4", "0x7f.0.0.1:" + dport, "/dns-query", ""},
		{"octal IPv4", "0177.0.0.1:" + dport, "/dns-query", ""},
		{"decimal IPv4", "2130706433:" + dport, "/dns-query", ""},
		{"IPv6 loopback", "[::1]:" + dport, "/dns-query", ""},
		{"mapped IPv6", "[::ffff:127.0.0.1]:" + dport, "/dns-query", ""},
		{"IPv6 zone", "[fe80::1%25lo]:" + dport, "/dns-query", ""},
		{"unbracketed IPv6", "::1", "/dns-query", ""},
		{"name to loopback", "evil.test:" + dport, "/dns-query", ""},
		{"two ports", T + ":" + dport, "/dns-query", ""},
		{"path @decoy", T, "@" + D + "/dns-query", ""},
		{"encoded path @decoy", T, "%40" + D + "%2Fdns-query", ""},
		{"path .decoy", T, "." + D + "/dns-query", ""},
		{"path //decoy", T, "//" + D + "/dns-query", ""},
		{"encoded path //decoy", T, "%2F%2F" + D + "%2Fdns-query", ""},
		{"path fragment", T, "/dns-query%23@" + D, ""},
		{"path query", T, "/dns-query%3Fhost=" + D, ""},
		{"path backslash", T, "%2F%5C" + D + "%2Fdns-query", ""},
		{"double-encoded slash", T, "%252F%252F" + D, ""},
		{"dot segments", T, "%2F..%2F..%2Fadmin", ""},
		{"path CRLF", T, "%2Fdns-query%0D%0AHost:%20" + D, ""},
		{"path scheme", T, "https:%2F%2F" + D + "%2Fdns-query", ""},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tgt.requests())
			u := tp.base + "/dns-query?targethost=" + tc.host + "&targetpath=" + tc.path
			req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("q"))
			if err != nil {
				t.Skipf("client cannot even send it: %v", err)
			}
			req.Header.Set("Content-Type", odoh.ContentType)
			resp, _ := do(t, tp.h2, req)
			reqs := tgt.requests()[before:]
			if tc.wantPath == "" {
				if resp.StatusCode != 400 && resp.StatusCode != 403 {
					t.Errorf("status %d, want 400 or 403", resp.StatusCode)
				}
				if len(reqs) != 0 {
					t.Errorf("forwarded to %s", reqs[0].path)
				}
				return
			}
			if resp.StatusCode != 200 || len(reqs) != 1 || reqs[0].path != tc.wantPath {
				t.Errorf("status %d, target saw %v, want one request for %s", resp.StatusCode, reqs, tc.wantPath)
			}
		})
	}
	if n := len(decoy.requests()); n != 0 {
		t.Errorf("the decoy was reached %d times", n)
	}
}

// TestRateLimit checks the per-client token bucket (D16).
func TestRateLimit(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ClientRate: 0.5, ClientBurst: 3})
	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	for i := range 3 {
		resp, _ := post(t, tp.h2, u, []byte("q"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp, _ := post(t, tp.h2, u, []byte("q"), nil)
	wantProxyStatus(t, resp, 429, odoh.ProxyHTTPRequestDenied)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on 429")
	}
	if n := len(tgt.requests()); n != 3 {
		t.Errorf("target saw %d requests, want 3", n)
	}
}

// TestConcurrencyCap checks MaxConcurrent: with one request parked at the
// target, the next one is refused with 429.
func TestConcurrencyCap(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, body []byte) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", odoh.ContentType)
		_, _ = w.Write(body)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, MaxConcurrent: 1})
	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	var wg sync.WaitGroup
	wg.Go(func() {
		resp, _ := post(t, tp.h2, u, []byte("q"), nil)
		if resp.StatusCode != 200 {
			t.Errorf("parked request: %d", resp.StatusCode)
		}
	})
	<-arrived
	resp, _ := post(t, tp.h2, u, []byte("q"), nil)
	wantProxyStatus(t, resp, 429, odoh.ProxyHTTPRequestDenied)
	close(release)
	wg.Wait()
	tgt.setRespond(nil)
}

// TestPooling checks D15: queries from different clients share one
// upstream connection.
func TestPooling(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	for _, c := range []*http.Client{tp.h2, tp.h3, tp.h2, tp.h3} {
		resp, _ := post(t, c, u, []byte("q"), nil)
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	remotes := map[string]bool{}
	for _, r := range tgt.requests() {
		remotes[r.remote] = true
		if r.proto != "HTTP/2.0" {
			t.Errorf("upstream protocol %s, want HTTP/2.0", r.proto)
		}
	}
	if len(remotes) != 1 {
		t.Errorf("target saw %d connections, want 1 pooled", len(remotes))
	}
}

// TestTargetHTTP3 forwards over HTTP/3 with the same policy.
func TestTargetHTTP3(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	resolver := dnsServer(t, map[string]netip.Addr{"evil.test": netip.MustParseAddr("127.0.0.1")})
	port := fmt.Sprint(tgt.port)
	tp := startProxy(t, ca, Config{TargetHTTP3: true, Resolver: resolver,
		Policy: Policy{Allow: []string{tgt.hostPort(), "evil.test:" + port}}})
	resp, body := post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q3"), http.Header{"Cookie": {"c=1"}})
	wantProxyStatus(t, resp, 200, relayed)
	if string(body) != "q3" {
		t.Errorf("body %q", body)
	}
	reqs := tgt.requests()
	if len(reqs) != 1 || reqs[0].proto != "HTTP/3.0" || reqs[0].header.Get("Cookie") != "" {
		t.Fatalf("target saw %+v", reqs)
	}
	resp, _ = post(t, tp.h2, tp.queryURL("evil.test:"+port, "%2Fdns-query"), []byte("q"), nil)
	wantProxyStatus(t, resp, 403, odoh.ProxyDestinationIPProhibited)
}

// TestMetrics checks that the counters move and that no label carries an
// address or a name.
func TestMetrics(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q"), nil)
	post(t, tp.h2, tp.queryURL("other.example", "%2Fdns-query"), []byte("q"), nil)
	mfs, err := tp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(resultNames[:], l.GetValue()) && !slices.Contains(tunnelResultNames[:], l.GetValue()) {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
				if mf.GetName() == "odoh_proxy_requests_total" {
					counts[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if counts["forwarded"] != 1 || counts["denied"] != 1 {
		t.Errorf("requests_total = %v", counts)
	}
}

// TestConcurrentQueries runs many queries at once over both protocols and
// checks every client gets its own answer: pooled buffers are never shared
// between requests.
func TestConcurrentQueries(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ClientRate: -1})
	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	var wg sync.WaitGroup
	for g := range 32 {
		c := tp.h2
		if g%4 == 0 {
			c = tp.h3
		}
		wg.Go(func() {
			for i := range 8 {
				body := bytes.Repeat([]byte(fmt.Sprintf("g%d-i%d;", g, i)), 1+(g*i)%300)
				resp, got := post(t, c, u, body, nil)
				if resp.StatusCode != 200 || !bytes.Equal(got, body) {
					t.Errorf("goroutine %d query %d: %d, got %d bytes, want %d", g, i, resp.StatusCode, len(got), len(body))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestHTTP1Target forwards to a target that speaks only HTTP/1.1, with the
// same fixed header set.
func TestHTTP1Target(t *testing.T) {
	ca := testca.New(t)
	var got http.Header
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", odoh.ContentType)
		_, _ = io.Copy(w, r.Body)
	}))
	srv.TLS = ca.ServerTLS(t)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{host}}})
	resp, body := post(t, tp.h2, tp.queryURL(host, "%2Fdns-query"), []byte("q1"), http.Header{"Cookie": {"c=1"}, "X-Forwarded-For": {"192.0.2.1"}})
	wantProxyStatus(t, resp, 200, relayed)
	if string(body) != "q1" {
		t.Errorf("body %q", body)
	}
	mu.Lock()
	defer mu.Unlock()
	keys := slices.Sorted(maps.Keys(got))
	if want := []string{"Accept", "Content-Length", "Content-Type", "User-Agent"}; !slices.Equal(keys, want) {
		t.Errorf("HTTP/1.1 upstream headers = %v, want %v", keys, want)
	}
}

// BenchmarkServeQuery measures the handler's hot path: checks, pooled
// buffers and the pooled HTTP/2 round trip to a real target on loopback.
// The target runs in the same process: its allocations are counted too.
func BenchmarkServeQuery(b *testing.B) {
	ca := testca.New(b)
	tgt := startTarget(b, ca.ServerTLS(b))
	tp := startProxy(b, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ClientRate: -1})
	u := "/dns-query?targethost=" + tgt.hostPort() + "&targetpath=%2Fdns-query"
	body := bytes.Repeat([]byte{1}, 250)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, u, bytes.NewReader(body))
			req.Header.Set("Content-Type", odoh.ContentType)
			rec := httptest.NewRecorder()
			tp.h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	})
}

// A resolver of the operator's own (odoh-proxy -resolver) that fails: the
// log names the lookup and the server really asked, not the system's
// (resolv.conf's), which net names by default and which was never asked.
func TestResolverErrorNamesTheServerAsked(t *testing.T) {
	ca := testca.New(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := pc.LocalAddr().String()
	pc.Close() // nothing answers there: connection refused
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, gone)
	}}
	tp := startProxy(t, ca, Config{Resolver: resolver, Policy: Policy{Allow: []string{"gone.test"}}})
	resp, _ := post(t, tp.h2, tp.queryURL("gone.test", "%2Fdns-query"), []byte("q"), nil)
	wantProxyStatus(t, resp, 502, odoh.ProxyDNSError)
	// At warn: a failing target is the operator's business (it was at
	// debug, where nobody saw it).
	waitFor(t, "the failure's log line", func() bool {
		return strings.Contains(tp.logs.String(), `level=WARN msg="could not forward to a target" target=gone.test:443`)
	})
	logs := tp.logs.String()
	if !strings.Contains(logs, "lookup gone.test: ") || !strings.Contains(logs, "->"+gone+": ") || strings.Contains(logs, "lookup gone.test on ") {
		t.Errorf("the log does not name the lookup and %s alone:\n%s", gone, logs)
	}
}

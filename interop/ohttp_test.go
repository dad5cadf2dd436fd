package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/ohttp"
)

// ohttpStack is one deployment serving ODoH and DNS over Oblivious HTTP at
// once: odoh-target is also the gateway for its own address, odoh-proxy
// also the relay to it (at /ohttp/127.0.0.1:PORT), Unbound behind.
func ohttpStack(t *testing.T, proxyArgs ...string) (*stack, string) {
	t.Helper()
	s := newStack(t, stackOptions{
		targetArgs: []string{"-log-level", "debug"},
		targetAt:   func(addr string) []string { return []string{"-ohttp-authority", addr} },
		proxyArgs:  append([]string{"-log-level", "debug"}, proxyArgs...),
		proxyFor: func(target string) []string {
			return []string{"-ohttp-gateway", "https://" + target + ohttp.WellKnownGatewayPath}
		},
	})
	return s, "https://" + s.Proxy.Listen + "/ohttp/" + s.Target.Listen
}

// ohttpArgs points the CLI at the relay and the gateway's DoH URL, as
// Firefox's three prefs do (the keys: the relay's shared copy, checked
// against the gateway's own through the relay's tunnel).
func (s *stack) ohttpArgs(relay string, extra ...string) []string {
	return append([]string{"-ohttp-relay", relay, "-ohttp-doh", "https://" + s.Target.Listen + "/dns-query",
		"-ca", s.CAFile, "-allow-same-operator"}, extra...)
}

type cliAnswer struct {
	Status string
	Proxy  string
	Target string
	Answer []struct{ Name, Type, Data string }
}

func cliJSON(t *testing.T, args ...string) cliAnswer {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("odoh %v: exit %d: %s", args, code, errOut)
	}
	var r cliAnswer
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return r
}

// Our client → our proxy (relay) → our target (gateway) → Unbound, over
// HTTP/2 and HTTP/3 on both hops, while the same deployment answers ODoH:
// the queries of both protocols run at the same time.
func TestOHTTPChain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clientH3  bool
		proxyArgs []string
	}{
		{name: "h2 client, h2 gateway"},
		{name: "h3 client, h2 gateway", clientH3: true},
		{name: "h2 client, h3 gateway", proxyArgs: []string{"-target-http3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, relay := ohttpStack(t, tc.proxyArgs...)
			extra := []string{"-json"}
			if tc.clientH3 {
				extra = append(extra, "-http3")
			}
			var wg sync.WaitGroup
			results := make([]cliAnswer, 4)
			for i := range results {
				wg.Go(func() {
					switch i % 2 {
					case 0:
						results[i] = cliJSON(t, s.ohttpArgs(relay, append(extra, "www.example.test", "A")...)...)
					case 1:
						results[i] = cliJSON(t, s.clientArgs(append(extra, "www.example.test", "AAAA")...)...)
					}
				})
			}
			wg.Wait()
			for i, r := range results {
				want, via := "192.0.2.80", relay
				if i%2 == 1 {
					want, via = "2001:db8::80", "https://"+s.Proxy.Listen+"/dns-query{?targethost,targetpath}"
				}
				if r.Status != "NOERROR" || len(r.Answer) != 1 || r.Answer[0].Data != want || r.Proxy != via {
					t.Errorf("query %d: %+v, want %s via %s", i, r, want, via)
				}
			}
			// One client with both kinds of targets fails over between them.
			r := cliJSON(t, append(s.clientArgs(extra...), s.ohttpArgs(relay, "www.example.test", "A")...)...)
			if r.Status != "NOERROR" || len(r.Answer) != 1 {
				t.Errorf("mixed client: %+v", r)
			}
			// odoh configs shows the gateway's keys, as the gateway
			// publishes them at /.well-known/ohttp-gateway (RFC 9540).
			out, errOut, code := runCLI(t, append([]string{"configs"}, s.ohttpArgs(relay, "-json")...)...)
			var tcs []struct {
				Target    string
				OHTTPKeys []struct {
					KeyID     uint8  `json:"key_id"`
					KeyConfig string `json:"key_config"`
				} `json:"ohttp_keys"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &tcs) != nil {
				t.Fatalf("odoh configs: exit %d: %s%s", code, out, errOut)
			}
			published := gatewayKeys(t, s)
			if len(tcs) != 1 || len(tcs[0].OHTTPKeys) != 1 || tcs[0].Target != "https://"+s.Target.Listen+"/dns-query" ||
				tcs[0].OHTTPKeys[0].KeyConfig != hex.EncodeToString(published[2:]) || tcs[0].OHTTPKeys[0].KeyID != published[2] {
				t.Errorf("odoh configs printed %s, the gateway publishes %x", out, published)
			}
			if got := metric(t, s.Target.Admin, "odoh_target_requests_total", `protocol="ohttp"`); got < 2 {
				t.Errorf("target counted %v OHTTP requests, want at least 2", got)
			}
			if got := metric(t, s.Proxy.Admin, "odoh_proxy_ohttp_requests_total", `result="forwarded"`); got < 2 {
				t.Errorf("proxy counted %v relayed OHTTP requests, want at least 2", got)
			}
		})
	}
}

// The chain with Unbound's own DoH (HTTP/2) as the target's one upstream:
// client → relay over HTTP/3, relay → gateway over HTTP/3, gateway →
// Unbound over HTTP/2. Unbound 1.17 has no DoH over HTTP/3.
func TestOHTTPChainUnboundDoH(t *testing.T) {
	s, relay := ohttpStack(t, "-target-http3")
	ub := testunbound.StartServer(t, testunbound.Options{Zones: []string{"example.test."}, LocalData: zoneData,
		DoHCertFile: s.CertFile, DoHKeyFile: s.KeyFile})
	// The target trusts the test CA for its upstream through the system
	// roots it reads at start.
	t.Setenv("SSL_CERT_FILE", s.CAFile)
	s.Target.stop(t, "odoh-target")
	s.targetArgs = replaceArg(s.targetArgs, "-upstream", "https://"+ub.DoHAddr+"/dns-query")
	s.restartTarget(t)
	for _, qt := range []string{"A", "AAAA"} {
		r := cliJSON(t, s.ohttpArgs(relay, "-json", "-http3", "www.example.test", qt)...)
		if r.Status != "NOERROR" || len(r.Answer) != 1 || r.Proxy != relay {
			t.Fatalf("%s through Unbound's DoH: %+v", qt, r)
		}
	}
	if got := metric(t, s.Target.Admin, "odoh_target_requests_total", `protocol="ohttp",result="ok",transport="h3"`); got != 2 {
		t.Errorf("the gateway answered %v OHTTP requests over HTTP/3, want 2", got)
	}
}

// The stub with an ODoH target and an OHTTP resolver uses both, each by
// its own protocol: with its cache off, 30 lookups spread over the two at
// random (all on one would have a chance of 2 in 2^30), and each protocol
// answers.
func TestStubMixesODoHAndOHTTP(t *testing.T) {
	s, relay := ohttpStack(t)
	args := append([]string{"stub", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-format", "json", "-cache-size", "0"},
		s.clientArgs()...)
	logs := startCmd(t, "odoh", append(args, s.ohttpArgs(relay)...)...)
	dnsAddr, _ := stubAddrs(t, logs)
	c := &dns.Client{Timeout: 10 * time.Second}
	for i := range 30 {
		qt := []uint16{dns.TypeA, dns.TypeAAAA}[i%2]
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("www.example.test.", qt), dnsAddr)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("lookup %d: %v %v\nstub logs:\n%s", i, r, err, logs)
		}
	}
	odohN := metric(t, s.Target.Admin, "odoh_target_requests_total", `protocol="odoh"`)
	ohttpN := metric(t, s.Target.Admin, "odoh_target_requests_total", `protocol="ohttp"`)
	if odohN < 1 || ohttpN < 1 || odohN+ohttpN < 30 {
		t.Errorf("the target answered %v ODoH and %v OHTTP requests for 30 lookups, want both", odohN, ohttpN)
	}
	if got := metric(t, s.Proxy.Admin, "odoh_proxy_ohttp_requests_total", `result="forwarded"`); got != ohttpN {
		t.Errorf("the relay forwarded %v OHTTP requests, the gateway answered %v", got, ohttpN)
	}
}

// httpClientFrom is s.httpClient with connections from ip, over TCP or
// (h3) UDP.
func httpClientFrom(t *testing.T, s *stack, h3 bool, ip string) *http.Client {
	t.Helper()
	c := s.httpClient(t, h3)
	local := net.ParseIP(ip)
	switch tr := c.Transport.(type) {
	case *http.Transport:
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}).DialContext
	case *http3.Transport:
		var mu sync.Mutex
		var conns []net.PacketConn
		// Close the connections (CONNECTION_CLOSE) before their sockets,
		// or the daemons wait for them to time out when they drain.
		t.Cleanup(func() {
			tr.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, pc := range conns {
				pc.Close()
			}
		})
		tr.Dial = func(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, err
			}
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: local})
			if err != nil {
				return nil, err
			}
			mu.Lock()
			conns = append(conns, pc)
			mu.Unlock()
			return quic.DialEarly(ctx, pc, ua, tlsCfg, cfg)
		}
	default:
		t.Fatalf("transport %T", tr)
	}
	return c
}

// gatewayKeys is the gateway's application/ohttp-keys, fetched from it.
func gatewayKeys(t *testing.T, s *stack) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "https://"+s.Target.Listen+ohttp.WellKnownGatewayPath, nil)
	req.Header.Set("Accept", ohttp.KeysContentType)
	resp, err := s.httpClient(t, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ohttp.KeysContentType {
		t.Fatalf("gateway keys: %d %q, %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return b
}

// recorder is a TLS server that records what reaches it and passes each
// request on to next, the real gateway: it sits between the relay and the
// target to show what the relay lets through.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
	srv     *httpserve.Server
}

func startRecorder(t *testing.T, s *stack, next string) *recorder {
	t.Helper()
	c := s.httpClient(t, false)
	rec := &recorder{}
	rec.srv = &httpserve.Server{Addr: "127.0.0.1:0", TLSConfig: s.CA.ServerTLS(t), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, next+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := c.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for _, k := range []string{"Content-Type", "Cache-Control"} {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	if err := rec.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = rec.srv.Serve(context.Background()) }()
	t.Cleanup(func() { _ = rec.srv.Close() })
	return rec
}

// The request Firefox sends, byte for byte in its shape: the inner DoH
// POST with the names its channel was given (TRR.cpp, ObliviousHttpChannel
// .cpp), encapsulated to the keys from config_uri, POSTed to relay_uri with
// a browser's headers and more that would identify the client. The answer
// comes back, nothing of the client gets past the relay, and neither
// daemon logs or counts an address or a name.
func TestOHTTPFirefoxRequestAndPrivacy(t *testing.T) {
	// Relay → recorder → the real target: the recorder gets the relay's
	// requests and forwards them to the gateway.
	s := newStack(t, stackOptions{targetArgs: []string{"-log-level", "debug"},
		targetAt: func(addr string) []string { return []string{"-ohttp-authority", addr} }})
	rec := startRecorder(t, s, "https://"+s.Target.Listen)
	s.Proxy.stop(t, "odoh-proxy")
	s.proxyArgs = append(replaceArg(replaceArg(s.proxyArgs, "-listen", "127.0.0.1:0"), "-allow-target", rec.srv.BoundAddr()),
		"-ohttp-gateway", "https://"+rec.srv.BoundAddr()+ohttp.WellKnownGatewayPath, "-log-level", "debug")
	s.Proxy = start(t, "odoh-proxy", s.proxyArgs...) // on a new port: the old one is free for anyone now
	s.proxyArgs = replaceArg(s.proxyArgs, "-listen", s.Proxy.Listen)
	relay := "https://" + s.Proxy.Listen + "/ohttp/" + rec.srv.BoundAddr()

	// The browser's connections leave from an address no daemon uses, so
	// that any trace of it past the relay, or in a log or a metric, is
	// the client's.
	const browserIP = "127.0.0.9"
	for _, h3 := range []bool{false, true} {
		c := httpClientFrom(t, s, h3, browserIP)
		resp, err := c.Get(relay) // network.trr.ohttp.config_uri
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cfgs, err := ohttp.ParseKeyConfigs(keys)
		if err != nil || resp.Header.Get("Content-Type") != ohttp.KeysContentType {
			t.Fatalf("keys from the relay: %v (%s)", err, resp.Header.Get("Content-Type"))
		}
		inner := &bhttp.Request{Method: "POST", Scheme: "https", Authority: s.Target.Listen, Path: "/dns-query",
			Header: bhttp.Fields{ // as nsTHashMap happened to order them
				{Name: "Accept", Value: "application/dns-message"},
				{Name: "Content-Type", Value: "application/dns-message"},
				{Name: "Cache-Control", Value: "no-store"},
				{Name: "Accept-Language", Value: ""},
				{Name: "User-Agent", Value: ""},
			},
			Content: query("www.example.test", dns.TypeA)}
		plain, err := inner.Append(nil, bhttp.Encoding{})
		if err != nil {
			t.Fatal(err)
		}
		// The encoder folds names to lower case; Firefox sends them as
		// given, which the gateway accepts: put them back.
		for _, f := range inner.Header {
			plain = bytes.Replace(plain, []byte(strings.ToLower(f.Name)), []byte(f.Name), 1)
		}
		if !bytes.Contains(plain, []byte("\x0fAccept-Language\x00")) {
			t.Fatalf("not Firefox's field names: %q", plain)
		}
		encReq, cc, err := ohttp.EncapsulateRequest(cfgs[0], plain)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, relay, bytes.NewReader(encReq))
		req.Header = http.Header{
			"Content-Type":    {ohttp.RequestContentType},
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
			"Accept":          {"*/*"},
			"Accept-Language": {"de-CH,de;q=0.8"},
			"Accept-Encoding": {"gzip, deflate, br"},
			"Cookie":          {"tracker=client-cookie"},
			"X-Forwarded-For": {"192.0.2.7"},
			"Forwarded":       {"for=192.0.2.7"},
			"Via":             {"1.1 client-proxy"},
			"Traceparent":     {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		}
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ohttp.ResponseContentType {
			t.Fatalf("relay answered %s %q (Proxy-Status %q)", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Proxy-Status"))
		}
		res, err := cc.DecapsulateResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		r, err := bhttp.ParseResponse(res)
		if err != nil || r.Status != 200 || r.Header.Get("content-type") != "application/dns-message" {
			t.Fatalf("inner response %+v, %v", r, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(r.Content); err != nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
			t.Fatalf("answer %v, %v", m, err)
		}
	}

	// Past the relay: the proxy's fixed header set, nothing of the client.
	rec.mu.Lock()
	seen := slices.Clone(rec.headers)
	rec.mu.Unlock()
	posts := 0
	for _, h := range seen {
		if h.Get("Content-Type") != ohttp.RequestContentType {
			continue // the relay's key fetch
		}
		posts++
		var keys []string
		for k := range h {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"Accept", "Content-Length", "Content-Type", "User-Agent"}) || h.Get("User-Agent") != "odoh-proxy" {
			t.Errorf("the gateway got headers %v", h)
		}
		for k, v := range h {
			for _, bad := range []string{"Mozilla", "de-CH", "tracker", "192.0.2.7", "client-proxy", "0af765", browserIP} {
				if strings.Contains(strings.Join(v, ","), bad) {
					t.Errorf("header %s carries the client's %q", k, bad)
				}
			}
		}
	}
	if posts != 2 {
		t.Errorf("%d requests reached the gateway, want 2", posts)
	}

	// No address of a client and no name in the logs or the metrics.
	ours := []string{s.Target.Listen, s.Target.Admin, s.Proxy.Listen, s.Proxy.Admin, rec.srv.BoundAddr()}
	for name, d := range map[string]*daemon{"target": s.Target, "proxy": s.Proxy} {
		var texts []string
		texts = append(texts, d.logs.String())
		resp, err := http.Get("http://" + d.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		mb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts = append(texts, string(mb))
		for _, text := range texts {
			if strings.Contains(text, "example.test") {
				t.Errorf("%s logs or metrics name the query", name)
			}
			if strings.Contains(text, browserIP) {
				t.Errorf("%s logs or metrics hold the browser's address %s", name, browserIP)
			}
			for _, f := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune("\" ,{}=\n", r) }) {
				host, _, err := net.SplitHostPort(f)
				if err == nil && net.ParseIP(host) != nil && !slices.Contains(ours, f) {
					t.Errorf("%s logs or metrics hold address %s", name, f)
				}
			}
		}
	}
}

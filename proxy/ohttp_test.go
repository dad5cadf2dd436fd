package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// ohttpTarget is a recording target that answers as a gateway: POST with
// an opaque message/ohttp-res (the body reversed), GET with keys.
func ohttpTarget(t *testing.T, ca *testca.CA, keys []byte) *recordingTarget {
	t.Helper()
	tgt := startTarget(t, ca.ServerTLS(t))
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		h := w.Header()
		if r.Method == http.MethodGet {
			h.Set("Content-Type", ohttp.KeysContentType)
			h.Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(keys)
			return
		}
		h.Set("Content-Type", ohttp.ResponseContentType)
		h.Set("Cache-Control", "private, no-store")
		h.Set("Set-Cookie", "track=1")
		h.Set("Server", "gateway/1.0")
		out := slices.Clone(body)
		slices.Reverse(out)
		_, _ = w.Write(out)
	})
	return tgt
}

func testKeys(t *testing.T) []byte {
	t.Helper()
	k, err := ohttp.GenerateKey(1, odoh.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ohttp.MarshalKeyConfigs(k.Config())
	return b
}

func postOHTTP(t *testing.T, c *http.Client, rawURL string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ohttp.RequestContentType)
	return do(t, c, req)
}

func gatewayURL(tgt *recordingTarget) string {
	return "https://" + tgt.hostPort() + ohttp.WellKnownGatewayPath
}

// The relay forwards the body to its one gateway with the proxy's fixed
// header set and nothing of the client's, and relays only the allowed
// response headers, over HTTP/2 and HTTP/3, logging nothing.
func TestOHTTPRelayStripsClientHeaders(t *testing.T) {
	ca := testca.New(t)
	tgt := ohttpTarget(t, ca, testKeys(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}},
		OHTTP: []OHTTPRelay{{Gateway: gatewayURL(tgt)}}})
	relay := tp.base + OHTTPPathPrefix + tgt.hostPort()
	body := []byte("an encapsulated request, opaque to the relay")
	for _, proto := range []string{"h2", "h3"} {
		t.Run(proto, func(t *testing.T) {
			c := map[string]*http.Client{"h2": tp.h2, "h3": tp.h3}[proto]
			before := len(tgt.requests())
			// A client-chosen destination has no effect: there is none.
			resp, got := postOHTTP(t, c, relay+"?targethost=evil.example&targetpath=%2Fx", body, clientHeaders)
			wantProxyStatus(t, resp, 200, relayed)
			want := slices.Clone(body)
			slices.Reverse(want)
			if !bytes.Equal(got, want) {
				t.Errorf("body %q, want the gateway's %q", got, want)
			}
			if resp.Header.Get("Content-Type") != ohttp.ResponseContentType || resp.Header.Get("Cache-Control") != "private, no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q", resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
			}
			for _, k := range []string{"Set-Cookie", "Server"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("gateway's %s reached the client: %q", k, v)
				}
			}
			reqs := tgt.requests()
			if len(reqs) != before+1 {
				t.Fatalf("gateway saw %d requests, want 1", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			if r.method != http.MethodPost || r.path != ohttp.WellKnownGatewayPath || r.rawQuery != "" || r.host != tgt.hostPort() {
				t.Errorf("upstream request %s %s?%s host %s", r.method, r.path, r.rawQuery, r.host)
			}
			if !bytes.Equal(r.body, body) {
				t.Errorf("upstream body %q", r.body)
			}
			var keys []string
			for k := range r.header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"Accept", "Content-Length", "Content-Type", "User-Agent"}; !slices.Equal(keys, want) {
				t.Errorf("upstream headers %v, want exactly %v", keys, want)
			}
			if r.header.Get("Content-Type") != ohttp.RequestContentType || r.header.Get("Accept") != ohttp.ResponseContentType || r.header.Get("User-Agent") != DefaultUserAgent {
				t.Errorf("upstream Content-Type/Accept/User-Agent %q/%q/%q", r.header.Get("Content-Type"), r.header.Get("Accept"), r.header.Get("User-Agent"))
			}
			for _, v := range []string{"192.0.2.7", "secret", "abc", "client", "evil", "127.0.0.1:" + fmt.Sprint(tp.srv.TCPAddr().Port)} {
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
	counts := map[string]float64{}
	mfs, _ := tp.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				counts[mf.GetName()+"/"+l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["odoh_proxy_ohttp_requests_total/forwarded"] != 2 || counts["odoh_proxy_requests_total/forwarded"] != 0 {
		t.Errorf("counters %v", counts)
	}
}

func TestOHTTPRelayErrors(t *testing.T) {
	ca := testca.New(t)
	tgt := ohttpTarget(t, ca, testKeys(t))
	dead := startTarget(t, ca.ServerTLS(t))
	deadHost := dead.hostPort()
	_ = dead.srv.Close()
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort(), deadHost}},
		OHTTP: []OHTTPRelay{{Gateway: gatewayURL(tgt)}, {Gateway: "https://" + deadHost + "/g", Path: "/ohttp/dead"}}})
	relay := tp.base + OHTTPPathPrefix + tgt.hostPort()
	send := func(method, url, ct string, body []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, _ := do(t, tp.h2, req)
		return resp
	}
	before := len(tgt.requests())
	for _, tc := range []struct {
		name   string
		method string
		url    string
		ct     string
		body   []byte
		status int
		kind   odoh.ProxyError
	}{
		{"PUT", http.MethodPut, relay, ohttp.RequestContentType, []byte("x"), 405, odoh.ProxyHTTPRequestError},
		{"ODoH media type", http.MethodPost, relay, odoh.ContentType, []byte("x"), 415, odoh.ProxyHTTPRequestError},
		{"empty body", http.MethodPost, relay, ohttp.RequestContentType, nil, 400, odoh.ProxyHTTPRequestError},
		{"body over the limit", http.MethodPost, relay, ohttp.RequestContentType, make([]byte, ohttp.MaxDNSMessageSize+1), 413, odoh.ProxyHTTPRequestError},
		{"gateway down", http.MethodPost, tp.base + "/ohttp/dead", ohttp.RequestContentType, []byte("x"), 502, odoh.ProxyConnectionRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(tc.method, tc.url, tc.ct, tc.body)
			wantProxyStatus(t, resp, tc.status, tc.kind)
			if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
	if n := len(tgt.requests()) - before; n != 0 {
		t.Errorf("the gateway saw %d refused requests", n)
	}
	// A body of the largest DNS message's size passes.
	if resp := send(http.MethodPost, relay, ohttp.RequestContentType, make([]byte, ohttp.MaxDNSMessageSize)); resp.StatusCode != 200 {
		t.Errorf("largest body: %d", resp.StatusCode)
	}
	// Another path under the prefix is no relay.
	if resp := send(http.MethodPost, tp.base+OHTTPPathPrefix+"other.example", ohttp.RequestContentType, []byte("x")); resp.StatusCode != 404 {
		t.Errorf("unconfigured relay path: %d", resp.StatusCode)
	}
	// A 2xx that is not an encapsulated response is refused.
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<script>"))
	})
	wantProxyStatus(t, send(http.MethodPost, relay, ohttp.RequestContentType, []byte("x")), 502, odoh.ProxyHTTPProtocolError)
	// Once the gateway leaves the allowlist, its relay refuses.
	if err := tp.h.SetPolicy(Policy{Allow: []string{deadHost}}); err != nil {
		t.Fatal(err)
	}
	wantProxyStatus(t, send(http.MethodPost, relay, ohttp.RequestContentType, []byte("x")), 403, odoh.ProxyHTTPRequestDenied)
	wantProxyStatus(t, send(http.MethodGet, relay, "", nil), 403, odoh.ProxyHTTPRequestDenied)
}

// GET on the relay path relays the gateway's keys, checked, typed and
// cached once for every client; the gateway's ohttp-key problem is relayed
// and drops the cached copy.
func TestOHTTPRelayKeys(t *testing.T) {
	ca := testca.New(t)
	keys := testKeys(t)
	tgt := ohttpTarget(t, ca, keys)
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}},
		ConfigsMinAge: time.Nanosecond, OHTTP: []OHTTPRelay{{Gateway: gatewayURL(tgt), Path: "/r"}}})
	fetches := func() int {
		n := 0
		for _, r := range tgt.requests() {
			if r.method == http.MethodGet {
				n++
				if r.path != ohttp.WellKnownGatewayPath || r.header.Get("Accept") != ohttp.KeysContentType {
					t.Errorf("keys fetched as GET %s, Accept %q", r.path, r.header.Get("Accept"))
				}
			}
		}
		return n
	}
	get := func() (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, tp.base+"/r", nil)
		req.Header["Cookie"] = []string{"session=abc"}
		return do(t, tp.h3, req)
	}
	for range 3 {
		resp, body := get()
		wantProxyStatus(t, resp, 200, relayed)
		if !bytes.Equal(body, keys) || resp.Header.Get("Content-Type") != ohttp.KeysContentType || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("keys %x, headers %v", body, resp.Header)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "max-age=") {
			t.Errorf("Cache-Control %q", cc)
		}
	}
	if n := fetches(); n != 1 {
		t.Errorf("%d fetches for 3 clients' requests, want 1", n)
	}
	// The gateway refuses a request's key: relayed as is, copy dropped.
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", ohttp.KeysContentType)
			_, _ = w.Write(keys)
			return
		}
		w.Header().Set("Content-Type", ohttp.ProblemContentType)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(ohttp.KeyProblem())
	})
	resp, body := postOHTTP(t, tp.h2, tp.base+"/r", []byte("x"), nil)
	wantProxyStatus(t, resp, 400, relayed)
	if !bytes.Equal(body, ohttp.KeyProblem()) || resp.Header.Get("Content-Type") != ohttp.ProblemContentType {
		t.Errorf("problem relayed as %q %s", resp.Header.Get("Content-Type"), body)
	}
	get()
	if n := fetches(); n != 2 {
		t.Errorf("%d fetches after the key problem, want 2", n)
	}
	// Keys that are no key configuration list are not relayed.
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", ohttp.KeysContentType)
		_, _ = w.Write([]byte("<html>"))
	})
	tp2 := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, OHTTP: []OHTTPRelay{{Gateway: gatewayURL(tgt)}}})
	resp, _ = do(t, tp2.h2, mustGet(t, tp2.base+OHTTPPathPrefix+tgt.hostPort()))
	wantProxyStatus(t, resp, 502, odoh.ProxyHTTPProtocolError)
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestOHTTPRelayConfig(t *testing.T) {
	allowed := Policy{Allow: []string{"dns.example"}}
	for _, tc := range []struct {
		name  string
		relay []OHTTPRelay
	}{
		{"gateway not allowed", []OHTTPRelay{{Gateway: "https://other.example/.well-known/ohttp-gateway"}}},
		{"plain http", []OHTTPRelay{{Gateway: "http://dns.example/g"}}},
		{"query in the gateway URL", []OHTTPRelay{{Gateway: "https://dns.example/g?x=1"}}},
		{"user info", []OHTTPRelay{{Gateway: "https://u@dns.example/g"}}},
		{"relative relay path", []OHTTPRelay{{Gateway: "https://dns.example/g", Path: "r"}}},
		{"relay path of the ODoH relay", []OHTTPRelay{{Gateway: "https://dns.example/g", Path: odoh.QueryPath}}},
		{"two relays at one path", []OHTTPRelay{{Gateway: "https://dns.example/g"}, {Gateway: "https://dns.example/h"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := New(Config{Policy: allowed, OHTTP: tc.relay}); err == nil {
				_ = h.Close()
				t.Fatal("accepted")
			}
		})
	}
	h, err := New(Config{Policy: allowed, OHTTP: []OHTTPRelay{{Gateway: "https://DNS.example/.well-known/ohttp-gateway"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ohttp.byPath["/ohttp/dns.example"] == nil {
		t.Errorf("default relay path not /ohttp/dns.example: %v", h.ohttp.byPath)
	}
}

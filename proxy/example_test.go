package proxy_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
)

// A relay for two targets. The Handler is served like any other, usually
// with HTTP/2 and HTTP/3 (see internal/httpserve and cmd/odoh-proxy).
func Example() {
	h, err := proxy.New(proxy.Config{
		Policy: proxy.Policy{Allow: []string{"odoh.example", "odoh2.example:8443"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	// A query for a target outside the allowlist is refused before any
	// network activity.
	req := httptest.NewRequest(http.MethodPost,
		"/dns-query?targethost=internal.example&targetpath=%2Fdns-query", strings.NewReader("q"))
	req.Header.Set("Content-Type", "application/oblivious-dns-message")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Proxy-Status"))
	// Output: 403 odoh-proxy; error=http_request_denied; details="target not allowed"
}

// Policy.AllowOpen makes an open relay; ports and special addresses are
// still checked.
func ExamplePolicy() {
	_, err := proxy.New(proxy.Config{Policy: proxy.Policy{}})
	fmt.Println(err)
	h, err := proxy.New(proxy.Config{Policy: proxy.Policy{AllowOpen: true, OpenPorts: []uint16{443, 8443}}})
	fmt.Println(err)
	h.Close()
	// Output:
	// proxy: empty target allowlist (set Allow, or AllowOpen for an open relay)
	// <nil>
}

// Every refusal the relay makes itself carries its reason in Proxy-Status
// (RFC 9209), which clients parse with odoh.ParseProxyStatus; every request
// is counted through the Metrics interface (internal/metrics has the
// Prometheus one).
func ExampleHandler_ServeHTTP() {
	m := &countMetrics{}
	h, err := proxy.New(proxy.Config{Policy: proxy.Policy{Allow: []string{"odoh.example"}}, Metrics: m})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	for _, r := range []struct{ method, target, contentType string }{
		{http.MethodGet, "/dns-query?targethost=odoh.example&targetpath=%2Fdns-query", odoh.ContentType},
		{http.MethodPost, "/dns-query?targethost=odoh.example&targetpath=%2Fdns-query", "text/plain"},
		{http.MethodPost, "/dns-query?targethost=odoh.example", odoh.ContentType},
	} {
		req := httptest.NewRequest(r.method, r.target, strings.NewReader("q"))
		req.Header.Set("Content-Type", r.contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ps, err := odoh.ParseProxyStatus(rec.Header().Get("Proxy-Status"))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d %s %q\n", rec.Code, ps[0].Error, ps[0].Details)
	}
	fmt.Println(m.results)
	// Output:
	// 405 http_request_error "method not allowed"
	// 415 http_request_error "content type must be application/oblivious-dns-message"
	// 400 http_request_error "missing targetpath"
	// map[bad_request:3]
}

// countMetrics is a proxy.Metrics that counts results.
type countMetrics struct {
	mu      sync.Mutex
	results map[string]int
}

func (m *countMetrics) Request(result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.results == nil {
		m.results = map[string]int{}
	}
	m.results[result]++
}

func (*countMetrics) OHTTPRequest(string)            {}
func (*countMetrics) RateLimited()                   {}
func (*countMetrics) Inflight(int)                   {}
func (*countMetrics) UpstreamDuration(time.Duration) {}
func (*countMetrics) Tunnel(string)                  {}
func (*countMetrics) TunnelsOpen(int)                {}
func (*countMetrics) TunnelBytes(int64)              {}

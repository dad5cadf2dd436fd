package target_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

// A target answering names of a local zone itself and everything else
// through an upstream pool, with keys derived from a shared seed.
func Example() {
	seed := make([]byte, 32) // read it from a secret file in production
	keys, err := target.NewKeyring(target.KeyringConfig{Seed: seed, Period: 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	pool, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://192.0.2.53", "tls://192.0.2.54:853"}})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	zone, err := target.ParseZone(strings.NewReader(`internal. 300 IN SOA ns.internal. admin.internal. 1 3600 600 86400 60
www.internal. 300 IN A 10.0.0.1
`), "", "internal.zone")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := target.NewCache(target.CacheConfig{}) // the defaults
	if err != nil {
		log.Fatal(err)
	}
	chain, err := target.NewChain(target.ChainConfig{Zone: zone, Upstream: pool, Cache: cache})
	if err != nil {
		log.Fatal(err)
	}
	h, err := target.New(target.Config{Keys: keys, Resolver: chain, DoH: true})
	if err != nil {
		log.Fatal(err)
	}
	var _ http.Handler = h // serve it over HTTPS (h2 and h3)
	fmt.Println(zone.Len(), "local records")
	// Output: 2 local records
}

// A failover pool that skips an upstream for 5 s once it has failed twice
// in a row, doubling the wait up to a minute while probes keep failing.
func ExampleNewUpstreams() {
	pool, err := target.NewUpstreams(target.UpstreamsConfig{
		URLs:       []string{"udp://192.0.2.53", "tls://192.0.2.54:853"},
		Timeout:    time.Second,
		MaxFails:   2,
		MinBackoff: 5 * time.Second,
		MaxBackoff: time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	_, err = target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://192.0.2.53"}, MinBackoff: time.Minute, MaxBackoff: time.Second})
	fmt.Println(err)
	// Output: upstreams: maximum backoff 1s is below the minimum 1m0s
}

// New checks its Config; the Handler it returns answers every error as the
// RFC asks, here a query that is no ODoH message and one of the wrong
// media type, and counts each request through the Metrics interface.
func ExampleNew() {
	_, err := target.New(target.Config{})
	fmt.Println(err)

	keys, err := target.NewKeyring(target.KeyringConfig{})
	if err != nil {
		log.Fatal(err)
	}
	chain, err := target.NewChain(target.ChainConfig{}) // no zone, no upstream: every query fails
	if err != nil {
		log.Fatal(err)
	}
	m := &countMetrics{}
	h, err := target.New(target.Config{Keys: keys, Resolver: chain, Metrics: m})
	if err != nil {
		log.Fatal(err)
	}
	for _, ct := range []string{odoh.ContentType, "text/plain"} {
		req := httptest.NewRequest(http.MethodPost, odoh.QueryPath, strings.NewReader("not odoh"))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
	}
	fmt.Println(m.counts)
	// Output:
	// target: no keyring
	// 400 application/oblivious-dns-message no-store
	// 415 application/oblivious-dns-message no-store
	// map[odoh/h1/bad_request:1 odoh/h1/unsupported_media_type:1]
}

// countMetrics is a target.Metrics that counts requests by label: the
// daemon's is internal/metrics.Target, for Prometheus.
type countMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *countMetrics) Request(protocol, transport, result string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[protocol+"/"+transport+"/"+result]++
}

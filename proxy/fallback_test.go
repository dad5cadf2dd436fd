package proxy

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// countingRT counts the round trips it passes on.
type countingRT struct {
	rt http.RoundTripper
	n  *atomic.Int32
}

func (c countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestHTTP3FallsBackToHTTP2: with TargetHTTP3, a target without HTTP/3
// gets its first request over HTTP/2 once the QUIC handshake fails, and
// its next requests over HTTP/2 at once, without another HTTP/3 attempt,
// until HTTP3Retry has passed. The operator learns it once.
func TestHTTP3FallsBackToHTTP2(t *testing.T) {
	ca := testca.New(t)
	tgt := startTargetOpts(t, ca.ServerTLS(t), true)
	tp := startProxy(t, ca, Config{TargetHTTP3: true, ConnectTimeout: 300 * time.Millisecond,
		Policy: Policy{Allow: []string{tgt.hostPort()}}})
	f := tp.h.upstream.(*h3Fallback)
	var h3Tries atomic.Int32
	f.h3 = countingRT{f.h3, &h3Tries}
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	f.now = clock.now

	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	query := func() {
		t.Helper()
		resp, body := post(t, tp.h2, u, []byte("query"), nil)
		if resp.StatusCode != http.StatusOK || string(body) != "query" {
			t.Fatalf("%s %q (Proxy-Status %q)", resp.Status, body, resp.Header.Get("Proxy-Status"))
		}
	}
	query()
	if n := h3Tries.Load(); n != 1 {
		t.Fatalf("%d HTTP/3 attempts for the first query, want 1", n)
	}
	for range 5 {
		query()
	}
	if n := h3Tries.Load(); n != 1 {
		t.Errorf("%d HTTP/3 attempts after the first failed, want none more", n)
	}
	for _, r := range tgt.requests() {
		if r.proto != "HTTP/2.0" {
			t.Errorf("the target got %s, want HTTP/2.0", r.proto)
		}
	}
	clock.add(DefaultHTTP3Retry)
	query()
	if n := h3Tries.Load(); n != 2 {
		t.Errorf("%d HTTP/3 attempts after HTTP3Retry, want 2", n)
	}
	logs := tp.logs.String()
	if c := strings.Count(logs, "target did not complete an HTTP/3 handshake"); c != 2 ||
		!strings.Contains(logs, "target="+tgt.hostPort()) || !strings.Contains(logs, "retry_http3_after=5m0s") {
		t.Errorf("fallback logged %d times, want once per failure:\n%s", c, logs)
	}
}

package target_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/internal/metrics/metricstest"
	"github.com/odohd/odoh/target"
)

// The failover rules of target.Upstreams beyond transport failures: which
// answers are failures, and how soon a pool whose upstreams were down
// finds one that is back.

// answerA answers every query with an A record of addr.
func answerA(addr string) func(*dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + addr)
		r.Answer = []dns.RR{rr}
		return r
	}
}

// answerRcode answers every query with rcode and no record; a SERVFAIL
// carries the Extended DNS Error "Network Error" (23).
func answerRcode(rcode int) func(*dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetRcode(q, rcode)
		if rcode == dns.RcodeServerFailure {
			r.SetEdns0(1232, false)
			o := r.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNetworkError})
		}
		return r
	}
}

// silent never answers: the packets are dropped.
func silent(*dns.Msg) *dns.Msg { return nil }

func newPool(t *testing.T, o target.UpstreamsConfig, ups ...*loopback) *target.Upstreams {
	t.Helper()
	for _, u := range ups {
		o.URLs = append(o.URLs, u.url())
	}
	pool, err := target.NewUpstreams(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func queries(ups ...*loopback) []int64 {
	var n []int64
	for _, u := range ups {
		n = append(n, u.queries.Load())
	}
	return n
}

// TestUpstreamFailoverOnRcode: a SERVFAIL or a REFUSED is no answer: the
// query goes on to the next upstream, and each counts against its
// upstream's health, so that one which keeps refusing is skipped.
func TestUpstreamFailoverOnRcode(t *testing.T) {
	servfail, refused := startLoopback(t, answerRcode(dns.RcodeServerFailure)), startLoopback(t, answerRcode(dns.RcodeRefused))
	good := startLoopback(t, answerA("192.0.2.70"))
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0))
	reg := prometheus.NewRegistry()
	tm, err := metrics.NewTarget(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, target.UpstreamsConfig{Timeout: 5 * time.Second, MaxFails: 2, Now: clock.Now, Metrics: tm},
		servfail, refused, good)
	for i := range 2 {
		m := resolve(t, pool, "fo.test.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || !hasA(m, "192.0.2.70") {
			t.Fatalf("query %d: %v, want the third upstream's answer", i, m)
		}
	}
	if n := queries(servfail, refused, good); n[0] != 2 || n[1] != 2 || n[2] != 2 {
		t.Fatalf("queries per upstream %v, want 2 each", n)
	}
	for i, want := range []float64{0, 0, 1} {
		if g := metricstest.Must(t, reg, "odoh_target_upstream_up", map[string]string{"upstream": strconv.Itoa(i)}); g != want {
			t.Errorf("upstream %d: up=%v, want %v", i, g, want)
		}
	}
	resolve(t, pool, "fo.test.", dns.TypeA)
	if n := queries(servfail, refused, good); n[0] != 2 || n[1] != 2 || n[2] != 3 {
		t.Errorf("queries per upstream %v, want 2, 2, 3: the failing two are down and skipped", n)
	}
}

// TestUpstreamAllFailRcode: when no upstream answers, the query gets the
// first SERVFAIL with its Extended DNS Errors; with only REFUSED (or
// another rcode that answers nothing), ErrNoUpstream, as for timeouts.
// NXDOMAIN is an answer: the next upstream is not asked.
func TestUpstreamAllFailRcode(t *testing.T) {
	refused, servfail := startLoopback(t, answerRcode(dns.RcodeRefused)), startLoopback(t, answerRcode(dns.RcodeServerFailure))
	notimp := startLoopback(t, answerRcode(dns.RcodeNotImplemented))
	pool := newPool(t, target.UpstreamsConfig{Timeout: 5 * time.Second}, refused, servfail)
	m := resolve(t, pool, "fail.test.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || !hasEDE(m, dns.ExtendedErrorCodeNetworkError) {
		t.Errorf("REFUSED then SERVFAIL: %v, want the SERVFAIL with its EDE", m)
	}

	pool = newPool(t, target.UpstreamsConfig{Timeout: 5 * time.Second}, refused, notimp)
	q := new(dns.Msg).SetQuestion("fail.test.", dns.TypeA)
	if r, err := pool.Resolve(context.Background(), q); !errors.Is(err, target.ErrNoUpstream) {
		t.Errorf("REFUSED then NOTIMP: %v, %v; want ErrNoUpstream", r, err)
	}

	nx := startLoopback(t, answerRcode(dns.RcodeNameError))
	after := startLoopback(t, answerA("192.0.2.71"))
	pool = newPool(t, target.UpstreamsConfig{Timeout: 5 * time.Second}, nx, after)
	if m := resolve(t, pool, "none.test.", dns.TypeA); m.Rcode != dns.RcodeNameError || after.queries.Load() != 0 {
		t.Errorf("NXDOMAIN: %v, %d queries to the next upstream; want NXDOMAIN and none", m, after.queries.Load())
	}
}

// TestCacheFreshWhenFirstUpstreamServfails: an expired answer is not
// served stale while the first upstream answers SERVFAIL and the second
// answers: the second's fresh answer is.
func TestCacheFreshWhenFirstUpstreamServfails(t *testing.T) {
	first, second := startLoopback(t, answerA("192.0.2.72")), startLoopback(t, answerA("192.0.2.73"))
	c, _, clock := cachedChain(t, target.CacheConfig{StaleAge: time.Hour}, target.UpstreamsConfig{Timeout: 5 * time.Second},
		first.url(), second.url())
	if r := mustAsk(t, c, "sf.test.", dns.TypeA); !hasA(r, "192.0.2.72") {
		t.Fatalf("first answer %v", r)
	}
	for _, rcode := range []int{dns.RcodeServerFailure, dns.RcodeRefused} {
		first.set(answerRcode(rcode))
		clock.Advance(61 * time.Second)
		r := mustAsk(t, c, "sf.test.", dns.TypeA)
		if !hasA(r, "192.0.2.73") || hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) {
			t.Errorf("first upstream answering %s: %v, want the second's fresh answer", dns.RcodeToString[rcode], r)
		}
	}
}

// TestUpstreamPromptRecovery: with every upstream down and the first
// dropping queries, the query that finds the second back is answered
// without waiting for the first's timeout (a minute here: the query's own
// deadline is 20 s); so is a query while the dropping first one is probed.
func TestUpstreamPromptRecovery(t *testing.T) {
	first, second := startLoopback(t, answerRcode(dns.RcodeRefused)), startLoopback(t, answerRcode(dns.RcodeServerFailure))
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0))
	pool := newPool(t, target.UpstreamsConfig{Timeout: time.Minute, RaceDelay: 20 * time.Millisecond, MaxFails: 1,
		MinBackoff: 10 * time.Second, Now: clock.Now}, first, second)
	ask := func() (*dns.Msg, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return pool.Resolve(ctx, new(dns.Msg).SetQuestion("back.test.", dns.TypeA))
	}
	// Both fail at once and go down.
	if m, err := ask(); err != nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("both failing: %v, %v; want SERVFAIL", m, err)
	}
	// The first now drops queries; the second is back. Both are still
	// down (the clock has not moved): the last resort finds the second.
	first.set(silent)
	second.set(answerA("192.0.2.74"))
	m, err := ask()
	if err != nil || !hasA(m, "192.0.2.74") {
		t.Fatalf("second back while both down: %v, %v; want its answer before the first's timeout", m, err)
	}
	// The first was asked (raced, not skipped): its server may count the
	// query after the answer came from the second.
	askedTimes(t, first, 2)
	if n := second.queries.Load(); n != 2 {
		t.Errorf("%d queries to the second, want 2", n)
	}
	// The second is up again: the first, down, is skipped.
	if m, err := ask(); err != nil || !hasA(m, "192.0.2.74") || first.queries.Load() != 2 {
		t.Errorf("second up: %v, %v, %d queries to the first; want the answer and none", m, err, first.queries.Load())
	}
	// The first's backoff ends: the query probes it, in its place in
	// the order, and gets the second's answer after the race delay.
	clock.Advance(10 * time.Second)
	if m, err := ask(); err != nil || !hasA(m, "192.0.2.74") {
		t.Errorf("probing the dropping first: %v, %v; want the second's answer", m, err)
	}
	askedTimes(t, first, 3)
}

// askedTimes waits until up has had n queries (at most 10 s), and fails
// the test if it has not, or has had more.
func askedTimes(t *testing.T, up *loopback, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for up.queries.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := up.queries.Load(); got != n {
		t.Errorf("%d queries to %s, want %d", got, up.addr, n)
	}
}

package dnscache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// upstream is a Fetch whose answers the test sets; it counts its calls.
type upstream struct {
	calls  atomic.Int64
	answer func(q *dns.Msg) (*dns.Msg, error)
}

func (u *upstream) fetch(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	u.calls.Add(1)
	return u.answer(q)
}

func a(name string, ttl uint32) func(q *dns.Msg) (*dns.Msg, error) {
	return func(q *dns.Msg) (*dns.Msg, error) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(name + " 60 IN A 192.0.2.1")
		rr.Header().Ttl = ttl
		r.Answer = []dns.RR{rr}
		return r, nil
	}
}

func newTest(t *testing.T, c Config) (*Cache, *clock) {
	t.Helper()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	c.Now = clk.Now
	x, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return x, clk
}

func resolve(t *testing.T, c *Cache, u *upstream, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	return c.Resolve(context.Background(), q, u.fetch)
}

// TestFailureBackoff: a failure is cached 1 s, doubling while it lasts, up
// to FailureTTL; a success resets it.
func TestFailureBackoff(t *testing.T) {
	c, clk := newTest(t, Config{FailureTTL: 4 * time.Second, StaleAge: -1})
	boom := errors.New("upstream down")
	u := &upstream{answer: func(*dns.Msg) (*dns.Msg, error) { return nil, boom }}
	// Each failure is cached for 1, 2, 4, 4 s: within it, no upstream call.
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		n := u.calls.Load()
		if _, err := resolve(t, c, u, "x.test.", dns.TypeA); !errors.Is(err, boom) {
			t.Fatalf("failure %d: %v", i, err)
		}
		clk.Advance(d - time.Millisecond)
		_, err := resolve(t, c, u, "x.test.", dns.TypeA)
		if !errors.Is(err, ErrCachedFailure) || !errors.Is(err, boom) || u.calls.Load() != n+1 {
			t.Fatalf("failure %d: %v after %d calls; want the cached failure within %v", i, err, u.calls.Load()-n, d)
		}
		clk.Advance(time.Millisecond)
	}
	u.answer = a("x.test.", 60)
	if r, err := resolve(t, c, u, "x.test.", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Fatalf("after recovery: %v %v", r, err)
	}
	u.answer = func(*dns.Msg) (*dns.Msg, error) { return nil, boom }
	clk.Advance(61 * time.Second)
	resolve(t, c, u, "x.test.", dns.TypeA)
	n := u.calls.Load()
	clk.Advance(time.Second)
	resolve(t, c, u, "x.test.", dns.TypeA)
	if u.calls.Load() != n+1 {
		t.Error("the backoff did not start afresh after a success")
	}
}

// TestCoalescing: identical queries in flight cost one upstream query; a
// caller that gives up does not fail the others; other keys are separate.
func TestCoalescing(t *testing.T) {
	m := &countMetrics{}
	c, _ := newTest(t, Config{Metrics: m})
	release := make(chan struct{})
	u := &upstream{answer: func(q *dns.Msg) (*dns.Msg, error) {
		<-release
		return a(q.Question[0].Name, 60)(q)
	}}
	var wg sync.WaitGroup
	var answered atomic.Int64
	quitter, quit := context.WithCancel(context.Background())
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i == 0 {
				ctx = quitter
			}
			q := new(dns.Msg).SetQuestion("Same.test.", dns.TypeA)
			q.Id = uint16(i)
			r, err := c.Resolve(ctx, q, u.fetch)
			if i == 0 {
				return
			}
			if err != nil || r.Id != uint16(i) || len(r.Answer) != 1 {
				t.Errorf("caller %d: %v %v", i, r, err)
				return
			}
			answered.Add(1)
		}()
	}
	// Every caller missed the cache before the answer exists: all are
	// waiting for the one fetch (or about to join it).
	for m.misses.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	quit()
	close(release)
	wg.Wait()
	if u.calls.Load() != 1 || answered.Load() != 19 || m.coalesced.Load() == 0 {
		t.Errorf("%d upstream queries, %d answered, %d coalesced; want 1, 19 and some", u.calls.Load(), answered.Load(), m.coalesced.Load())
	}
}

type countMetrics struct {
	noMetrics
	misses, coalesced atomic.Int64
}

func (m *countMetrics) CacheMiss()      { m.misses.Add(1) }
func (m *countMetrics) CacheCoalesced() { m.coalesced.Add(1) }

// TestFlush: one name (all types), a subtree, everything; a query in
// flight across a flush is answered but not cached.
func TestFlush(t *testing.T) {
	c, _ := newTest(t, Config{})
	u := &upstream{answer: func(q *dns.Msg) (*dns.Msg, error) { return a(q.Question[0].Name, 60)(q) }}
	for _, n := range []string{"example.test.", "www.example.test.", "a.b.example.test.", "other.test.", "xexample.test."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			resolve(t, c, u, n, qt)
		}
	}
	if n := c.Flush("WWW.example.test", false); n != 2 || c.Len() != 8 {
		t.Errorf("flushing one name removed %d, %d left; want 2 and 8", n, c.Len())
	}
	if n := c.Flush("example.test.", true); n != 4 || c.Len() != 4 {
		t.Errorf("flushing a subtree removed %d, %d left; want 4 and 4 (xexample.test. is not below example.test.)", n, c.Len())
	}
	if n := c.Flush(".", true); n != 4 || c.Len() != 0 {
		t.Errorf("flushing everything removed %d, %d left", n, c.Len())
	}
	release := make(chan struct{})
	u.answer = func(q *dns.Msg) (*dns.Msg, error) { <-release; return a(q.Question[0].Name, 60)(q) }
	done := make(chan struct{})
	go func() { resolve(t, c, u, "late.test.", dns.TypeA); close(done) }()
	for u.calls.Load() == 10 {
		time.Sleep(time.Millisecond)
	}
	c.Flush(".", true)
	close(release)
	<-done
	if c.Len() != 0 {
		t.Error("an answer fetched across a flush was cached")
	}
}

// TestConfigLimits: settings outside the RFCs' bounds are refused.
func TestConfigLimits(t *testing.T) {
	for _, c := range []Config{
		{FailureTTL: 500 * time.Millisecond},
		{FailureTTL: 6 * time.Minute},
		{StaleAge: 25 * time.Hour},
		{MaxTTL: -time.Second},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestTTLs: an answer's TTLs never exceed what is left of its cached
// lifetime (MaxTTL caps them); an answer that is not cached (TTL 0 here)
// keeps its TTLs.
func TestTTLs(t *testing.T) {
	c, clk := newTest(t, Config{MaxTTL: 100 * time.Second})
	u := &upstream{answer: a("t.test.", 300)}
	r, _ := resolve(t, c, u, "t.test.", dns.TypeA)
	if ttl := r.Answer[0].Header().Ttl; ttl != 100 {
		t.Errorf("first answer TTL %d, want 100 (MaxTTL)", ttl)
	}
	clk.Advance(30 * time.Second)
	r, _ = resolve(t, c, u, "t.test.", dns.TypeA)
	if ttl := r.Answer[0].Header().Ttl; ttl != 70 {
		t.Errorf("cached answer TTL %d after 30 s, want 70", ttl)
	}
	u.answer = func(q *dns.Msg) (*dns.Msg, error) {
		r, _ := a(q.Question[0].Name, 0)(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 600 IN TXT extra")
		r.Extra = []dns.RR{rr}
		return r, nil
	}
	r, _ = resolve(t, c, u, "zero.test.", dns.TypeA)
	if r.Extra[0].Header().Ttl != 600 || c.Len() != 1 {
		t.Errorf("uncached answer: extra TTL %d, %d entries; want 600 and 1", r.Extra[0].Header().Ttl, c.Len())
	}
}

// counts are the calls of the Metrics interface a recordMetrics saw.
type counts struct {
	hits, misses, stale, failures, coalesced int
	flushes, flushed, entries                int
}

// recordMetrics counts every call of the Metrics interface.
type recordMetrics struct {
	mu sync.Mutex
	n  counts
}

func (m *recordMetrics) add(f func(*counts)) { m.mu.Lock(); f(&m.n); m.mu.Unlock() }
func (m *recordMetrics) CacheHit()           { m.add(func(n *counts) { n.hits++ }) }
func (m *recordMetrics) CacheMiss()          { m.add(func(n *counts) { n.misses++ }) }
func (m *recordMetrics) CacheStale()         { m.add(func(n *counts) { n.stale++ }) }
func (m *recordMetrics) CacheFailure()       { m.add(func(n *counts) { n.failures++ }) }
func (m *recordMetrics) CacheCoalesced()     { m.add(func(n *counts) { n.coalesced++ }) }
func (m *recordMetrics) CacheFlush(k int)    { m.add(func(n *counts) { n.flushes++; n.flushed += k }) }
func (m *recordMetrics) CacheEntries(k int)  { m.add(func(n *counts) { n.entries = k }) }

func (m *recordMetrics) snapshot() counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

// TestMetrics: each event is counted once, as what it is: a miss, a hit,
// a stale answer, a cached failure, a flush and the entries held
// (coalescing is counted in TestCoalescing).
func TestMetrics(t *testing.T) {
	m := &recordMetrics{}
	c, clk := newTest(t, Config{Metrics: m, StaleAge: time.Hour})
	boom := errors.New("upstream down")
	u := &upstream{answer: a("m.test.", 60)}
	step := func(what string, want counts) {
		t.Helper()
		if got := m.snapshot(); got != want {
			t.Errorf("after %s: %+v, want %+v", what, got, want)
		}
	}
	resolve(t, c, u, "m.test.", dns.TypeA)
	step("a first query", counts{misses: 1, entries: 1})
	resolve(t, c, u, "m.test.", dns.TypeA)
	step("the same again", counts{misses: 1, hits: 1, entries: 1})
	u.answer = func(*dns.Msg) (*dns.Msg, error) { return nil, boom }
	clk.Advance(61 * time.Second)
	if r, err := resolve(t, c, u, "m.test.", dns.TypeA); err != nil || len(r.Answer) != 1 {
		t.Fatalf("stale answer: %v %v", r, err)
	}
	step("a stale answer fetched", counts{misses: 2, hits: 1, stale: 1, entries: 1})
	resolve(t, c, u, "m.test.", dns.TypeA)
	step("a stale answer while the failure is cached", counts{misses: 2, hits: 1, stale: 2, entries: 1})
	if _, err := resolve(t, c, u, "gone.test.", dns.TypeA); !errors.Is(err, boom) {
		t.Fatalf("failure: %v", err)
	}
	step("a failure", counts{misses: 3, hits: 1, stale: 2, entries: 2})
	if _, err := resolve(t, c, u, "gone.test.", dns.TypeA); !errors.Is(err, ErrCachedFailure) {
		t.Fatalf("cached failure: %v", err)
	}
	step("a cached failure", counts{misses: 3, hits: 1, stale: 2, failures: 1, entries: 2})
	c.Flush("gone.test.", false)
	step("a flush", counts{misses: 3, hits: 1, stale: 2, failures: 1, flushes: 1, flushed: 1, entries: 1})
}

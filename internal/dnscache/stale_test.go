package dnscache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
)

// The client response timer of RFC 8767 §5, on synctest's clock: every
// wait below is exact, and a query that would wait for an upstream that
// never answers deadlocks the bubble instead of passing.

// held is an upstream that answers addr for every name, TTL 60, once
// release is closed; it counts its calls.
type held struct {
	calls   atomic.Int64
	release chan struct{}
	addr    string
}

func newHeld(addr string) *held { return &held{release: make(chan struct{}), addr: addr} }

func (u *held) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	u.calls.Add(1)
	select {
	case <-u.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r := new(dns.Msg).SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + u.addr)
	r.Answer = []dns.RR{rr}
	return r, nil
}

// heldDown is held reporting itself down.
type heldDown struct{ *held }

func (heldDown) Down() bool { return true }

// expired returns a cache (synctest's clock) holding an answer for
// name that expired a second ago, with the metrics it counts into.
func expired(t *testing.T, c Config, name string) (*Cache, *recordStale) {
	t.Helper()
	m := &recordStale{}
	c.Metrics = m
	x, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	first := &upstream{answer: a(name, 60)}
	if _, err := x.Resolve(context.Background(), question(name), first.fetch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(61 * time.Second)
	return x, m
}

func question(name string) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, false)
	return q
}

type recordStale struct {
	noMetrics
	stale atomic.Int64
}

func (m *recordStale) CacheStale() { m.stale.Add(1) }

// wantStale checks that r is the stale answer: the first upstream's
// address, TTL 30, the Extended DNS Error "Stale Answer".
func wantStale(t *testing.T, what string, r *dns.Msg, err error) {
	t.Helper()
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" ||
		r.Answer[0].Header().Ttl != StaleTTL || !hasStaleEDE(r) {
		t.Fatalf("%s: %v %v; want the stale answer, TTL 30, EDE 3", what, r, err)
	}
}

func hasStaleEDE(r *dns.Msg) bool {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeStaleAnswer {
				return true
			}
		}
	}
	return false
}

// wantFresh checks that the cache now answers name with addr from the
// entry the background fetch stored, without asking up again.
func wantFresh(t *testing.T, c *Cache, up Upstream, calls *atomic.Int64, name, addr string) {
	t.Helper()
	n := calls.Load()
	r, err := c.ResolveUpstream(context.Background(), question(name), up)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != addr || hasStaleEDE(r) {
		t.Fatalf("after the upstream answered: %v %v; want %s, fresh", r, err, addr)
	}
	if calls.Load() != n {
		t.Errorf("the refreshed answer cost %d more upstream queries, want none", calls.Load()-n)
	}
}

// TestStaleAnswerTimeout: a query whose answer has expired waits
// StaleAnswerTimeout for the upstream (when set: RFC 8767's 1.8 s), then gets the
// stale answer; the upstream, still asked, refreshes the cache when it
// answers, with no second query. Two queries waiting at once share the
// upstream query, each with its own timer.
func TestStaleAnswerTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"suggested", SuggestedStaleAnswerTimeout, SuggestedStaleAnswerTimeout},
		{"set", 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, m := expired(t, Config{StaleAge: time.Hour, StaleAnswerTimeout: tc.set}, "late.test.")
				up := newHeld("192.0.2.2")
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						time.Sleep(time.Duration(i) * 100 * time.Millisecond)
						start := time.Now()
						r, err := c.ResolveUpstream(context.Background(), question("late.test."), up)
						wantStale(t, "upstream silent", r, err)
						if d := time.Since(start); d != tc.want {
							t.Errorf("query %d: stale answer after %v, want %v", i, d, tc.want)
						}
					})
				}
				wg.Wait()
				if n, s := up.calls.Load(), m.stale.Load(); n != 1 || s != 2 {
					t.Errorf("%d upstream queries and %d stale answers, want 1 and 2", n, s)
				}
				close(up.release)
				synctest.Wait()
				wantFresh(t, c, up, &up.calls, "late.test.", "192.0.2.2")
			})
		})
	}
}

// TestStaleAnswerTimeoutNotReached: an upstream that answers within the
// timeout gives its fresh answer; one that fails gives the stale answer at
// its failure, as before the timer.
func TestStaleAnswerTimeoutNotReached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := expired(t, Config{StaleAge: time.Hour, StaleAnswerTimeout: SuggestedStaleAnswerTimeout}, "quick.test.")
		up := newHeld("192.0.2.2")
		go func() {
			time.Sleep(SuggestedStaleAnswerTimeout - time.Millisecond)
			close(up.release)
		}()
		r, err := c.ResolveUpstream(context.Background(), question("quick.test."), up)
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.2" || hasStaleEDE(r) || m.stale.Load() != 0 {
			t.Fatalf("answer within the timeout: %v %v; want it fresh", r, err)
		}

		c, _ = expired(t, Config{StaleAge: time.Hour, StaleAnswerTimeout: SuggestedStaleAnswerTimeout}, "fails.test.")
		boom := &upstream{answer: func(*dns.Msg) (*dns.Msg, error) {
			time.Sleep(time.Second)
			return nil, context.DeadlineExceeded
		}}
		start := time.Now()
		r, err = c.Resolve(context.Background(), question("fails.test."), boom.fetch)
		wantStale(t, "upstream failing", r, err)
		if d := time.Since(start); d != time.Second {
			t.Errorf("stale answer %v after the query, want at the failure (1s)", d)
		}
	})
}

// TestStaleAtOnceWhenDown: while the upstream reports itself down, a query
// whose answer has expired gets the stale answer at once; the upstream is
// still asked, and its answer refreshes the cache.
func TestStaleAtOnceWhenDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := expired(t, Config{StaleAge: time.Hour, StaleAnswerTimeout: -1}, "down.test.")
		up := heldDown{newHeld("192.0.2.3")}
		start := time.Now()
		r, err := c.ResolveUpstream(context.Background(), question("down.test."), up)
		wantStale(t, "upstream down", r, err)
		if d := time.Since(start); d != 0 {
			t.Errorf("stale answer after %v, want at once", d)
		}
		synctest.Wait()
		if n, s := up.calls.Load(), m.stale.Load(); n != 1 || s != 1 {
			t.Errorf("%d upstream queries and %d stale answers, want 1 and 1", n, s)
		}
		close(up.release)
		synctest.Wait()
		wantFresh(t, c, up, &up.calls, "down.test.", "192.0.2.3")
	})
}

// TestStaleWaitForUpstream: with StaleAnswerTimeout unset (the default) or
// negative, or an answer
// past StaleAge, or none at all, a query waits for the upstream however
// long it takes (here an hour), and gets its fresh answer.
func TestStaleWaitForUpstream(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		wait time.Duration // after the answer expired
	}{
		{"default: no timer", Config{StaleAge: time.Hour}, 0},
		{"timer off", Config{StaleAge: time.Hour, StaleAnswerTimeout: -1}, 0},
		{"past StaleAge", Config{StaleAge: time.Minute}, time.Minute},
		{"serve-stale off", Config{StaleAge: -1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, m := expired(t, tc.cfg, "wait.test.")
				time.Sleep(tc.wait)
				up := newHeld("192.0.2.4")
				go func() {
					time.Sleep(time.Hour)
					close(up.release)
				}()
				start := time.Now()
				r, err := c.ResolveUpstream(context.Background(), question("wait.test."), up)
				if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.4" || m.stale.Load() != 0 {
					t.Fatalf("%v %v; want the upstream's answer", r, err)
				}
				if d := time.Since(start); d != time.Hour {
					t.Errorf("answered after %v, want when the upstream answered (1h)", d)
				}
			})
		})
	}
}

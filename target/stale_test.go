package target_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/target"
)

// RFC 8767 §5 in the target's chain, over a real (loopback) upstream: an
// expired answer is served stale when the upstream is slow to answer, and
// at once when every upstream is known to be down; the upstream's answer
// still refreshes the cache. No assertion is on time: the upstream holds
// its answer until the test has the stale one, so the stale answer can
// only come from the timer (or the health), and every other deadline in
// play is a hang guard far away.

// holding answers like answerA(addr), but only once release is closed;
// held counts the queries it holds.
func holding(t *testing.T, addr string, held *atomic.Int64) (func(*dns.Msg) *dns.Msg, chan struct{}) {
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return func(q *dns.Msg) *dns.Msg {
		held.Add(1)
		<-release
		return answerA(addr)(q)
	}, release
}

func wantStaleA(t *testing.T, what string, r *dns.Msg, err error, addr string) {
	t.Helper()
	if err != nil || !hasA(r, addr) || r.Answer[0].Header().Ttl != 30 || !hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) {
		t.Fatalf("%s: %v %v; want the stale answer %s, TTL 30, EDE 3", what, r, err, addr)
	}
}

// waitHeld waits (at most 10 s) until the upstream holds a query, and
// fails the test unless it holds exactly one.
func waitHeld(t *testing.T, held *atomic.Int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); held.Load() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := held.Load(); n != 1 {
		t.Fatalf("the upstream holds %d queries, want 1", n)
	}
}

// refreshed waits (at most 10 s) until the chain answers name fresh with
// addr.
func refreshed(t *testing.T, c *target.Chain, name, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := ask(t, c, name, dns.TypeA, false, false)
		if err == nil && hasA(r, addr) && !hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream's answer did not refresh the cache: still %v %v", r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheStaleAnswerTimeout: the upstream is up but slow (it holds its
// answer): a query for an expired answer gets it stale after the
// stale-answer timeout, and the upstream's answer, when it comes, is
// cached, with no second upstream query.
func TestCacheStaleAnswerTimeout(t *testing.T) {
	up := startLoopback(t, answerA("192.0.2.80"))
	c, pool, clock := cachedChain(t, target.CacheConfig{StaleAge: time.Hour, StaleAnswerTimeout: 50 * time.Millisecond},
		target.UpstreamsConfig{}, up.url())
	mustAsk(t, c, "slow.test.", dns.TypeA)
	var held atomic.Int64
	hold, release := holding(t, "192.0.2.81", &held)
	up.set(hold)
	clock.Advance(61 * time.Second)
	r, err := ask(t, c, "slow.test.", dns.TypeA, false, false)
	wantStaleA(t, "upstream slow", r, err, "192.0.2.80")
	waitHeld(t, &held) // and its answer not yet sent
	close(release)
	refreshed(t, c, "slow.test.", "192.0.2.81")
	if n := pool.total(); n != 2 {
		t.Errorf("%d upstream queries, want 2 (the first answer and the refresh)", n)
	}
}

// TestCacheStaleAtOnceWhenUpstreamsDown: with every upstream marked down,
// a query for an expired answer gets it stale at once (the stale-answer
// timeout is an hour, the query's deadline 10 s); the upstream is still
// asked, and its answer refreshes the cache and brings it back up.
func TestCacheStaleAtOnceWhenUpstreamsDown(t *testing.T) {
	up := startLoopback(t, answerA("192.0.2.90"))
	c, pool, clock := cachedChain(t, target.CacheConfig{StaleAge: time.Hour, StaleAnswerTimeout: time.Hour},
		target.UpstreamsConfig{Timeout: time.Minute, MaxFails: 1, MinBackoff: time.Hour, MaxBackoff: time.Hour},
		up.url())
	mustAsk(t, c, "down.test.", dns.TypeA)
	if pool.Down() {
		t.Fatal("the pool is down while its upstream answers")
	}
	up.set(func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, dns.RcodeRefused) })
	if _, err := ask(t, c, "other.test.", dns.TypeA, false, false); err == nil {
		t.Fatal("answered while the upstream refuses")
	}
	if !pool.Down() {
		t.Fatal("the pool's only upstream failed MaxFails times and is not down")
	}
	var held atomic.Int64
	hold, release := holding(t, "192.0.2.91", &held)
	up.set(hold)
	clock.Advance(61 * time.Second)
	r, err := ask(t, c, "down.test.", dns.TypeA, false, false)
	wantStaleA(t, "every upstream down", r, err, "192.0.2.90")
	waitHeld(t, &held) // the refresh, in the background
	close(release)
	refreshed(t, c, "down.test.", "192.0.2.91")
	if pool.Down() {
		t.Error("the upstream answered the refresh and is still down")
	}
	if n := pool.total(); n != 3 {
		t.Errorf("%d upstream queries, want 3 (the first answer, the refused one, the refresh)", n)
	}
}

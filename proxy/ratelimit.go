package proxy

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// limiterShards spreads clients over independently locked maps so that the
// limiter is no global lock on the request path.
const limiterShards = 32

// limiter is a per-client token bucket: rate tokens per second, at most
// burst stored. Clients are keyed by IP address, IPv6 by /64 (one
// subscriber's prefix). Memory is bounded by maxClients; a full shard first
// forgets clients whose buckets are full again (they are indistinguishable
// from new ones), then an arbitrary one.
type limiter struct {
	rate     float64 // tokens per nanosecond
	burst    float64
	perShard int
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*bucket
	_  [40]byte // keep shards on separate cache lines
}

type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last update
}

func newLimiter(ratePerSec float64, burst, maxClients int) *limiter {
	l := &limiter{
		rate:     ratePerSec / float64(time.Second),
		burst:    float64(burst),
		perShard: max(1, maxClients/limiterShards),
		seed:     maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*bucket)
	}
	return l
}

// clientKey reduces a remote address to the rate-limit key.
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{} // unknown peers share one bucket
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes one token from key's bucket, reporting false if it is empty.
func (l *limiter) allow(key netip.Addr, now time.Time) bool {
	b16 := key.As16()
	sh := &l.shards[maphash.Bytes(l.seed, b16[:])%limiterShards]
	t := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[key]
	if b == nil {
		if len(sh.m) >= l.perShard {
			sh.evict(l, t)
		}
		b = &bucket{tokens: l.burst, last: t}
		sh.m[key] = b
	}
	l.refill(b, t)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) refill(b *bucket, t int64) {
	if d := t - b.last; d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)*l.rate)
		b.last = t
	}
}

// evict makes room in a full shard; sh.mu is held.
func (sh *limiterShard) evict(l *limiter, t int64) {
	for k, b := range sh.m {
		l.refill(b, t)
		if b.tokens >= l.burst {
			delete(sh.m, k)
		}
	}
	if len(sh.m) < l.perShard {
		return
	}
	for k := range sh.m {
		delete(sh.m, k)
		return
	}
}

// size returns the number of clients tracked (for tests).
func (l *limiter) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

package proxy

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/odohd/odoh/internal/connlimit"
	"golang.org/x/time/rate"
)

// limiterShards spreads clients over independently locked maps so that the
// limiter is no global lock on the request path.
const limiterShards = 32

// limiter is a per-client token bucket (golang.org/x/time/rate): rate
// tokens per second, at most burst stored. Clients are keyed by IP address,
// IPv6 by /64 (one subscriber's prefix). Memory is bounded by maxClients; a
// full shard first forgets clients whose buckets are full again (they are
// indistinguishable from new ones), then an arbitrary one.
type limiter struct {
	rate     rate.Limit
	burst    int
	perShard int
	seed     maphash.Seed
	shards   [limiterShards]limiterShard
}

type limiterShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
	_  [40]byte // keep shards on separate cache lines
}

func newLimiter(ratePerSec float64, burst, maxClients int) *limiter {
	l := &limiter{
		rate:     rate.Limit(ratePerSec),
		burst:    burst,
		perShard: max(1, maxClients/limiterShards),
		seed:     maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*rate.Limiter)
	}
	return l
}

// clientKey reduces a remote address to the key of its client, as the
// connection caps do (connlimit.ClientKey: IPv4, IPv6 by /64): the rate
// limit's and the concurrency caps' key.
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{} // unknown peers share one key
	}
	return connlimit.ClientKey(ap.Addr())
}

// allow takes one token from key's bucket, reporting false if it is empty.
func (l *limiter) allow(key netip.Addr, now time.Time) bool {
	b16 := key.As16()
	sh := &l.shards[maphash.Bytes(l.seed, b16[:])%limiterShards]
	sh.mu.Lock()
	b := sh.m[key]
	if b == nil {
		if len(sh.m) >= l.perShard {
			sh.evict(l, now)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		sh.m[key] = b
	}
	sh.mu.Unlock()
	return b.AllowN(now, 1)
}

// evict makes room in a full shard; sh.mu is held.
func (sh *limiterShard) evict(l *limiter, now time.Time) {
	for k, b := range sh.m {
		if b.TokensAt(now) >= float64(l.burst) {
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

package target

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
)

// Cache defaults; the rules behind them are shared with the stub.
const (
	// DefaultCacheSize is the number of entries a Cache holds by default.
	DefaultCacheSize = dnscache.DefaultSize
	// DefaultCacheMaxTTL caps how long an answer is kept, whatever its TTL.
	DefaultCacheMaxTTL = dnscache.DefaultMaxTTL
	// DefaultCacheMaxNegativeTTL caps how long a negative answer is kept.
	DefaultCacheMaxNegativeTTL = dnscache.DefaultMaxNegativeTTL
	// DefaultCacheFailureTTL caps how long a resolution failure is cached.
	DefaultCacheFailureTTL = dnscache.DefaultFailureTTL
	// DefaultCacheStaleAge is how long past expiry an answer may be served
	// while every upstream fails.
	DefaultCacheStaleAge = dnscache.DefaultStaleAge
)

// CacheMetrics receives what a Cache reports (internal/metrics.Cache is the
// Prometheus implementation).
type CacheMetrics interface {
	CacheHit()              // answered from a live entry
	CacheMiss()             // asked the upstreams (coalesced queries included)
	CacheStale()            // a stale answer served while every upstream failed
	CacheFailure()          // answered with a cached failure
	CacheCoalesced()        // joined an identical query in flight
	CacheFlush(removed int) // a flush, and the entries it removed
	CacheEntries(n int)     // entries held
}

// CacheConfig configures NewCache. Zero values mean the defaults.
type CacheConfig struct {
	// Size bounds the entries (answers and failures); zero means
	// DefaultCacheSize.
	Size int
	// MaxTTL caps answer lifetimes; zero means DefaultCacheMaxTTL.
	MaxTTL time.Duration
	// MaxNegativeTTL caps NXDOMAIN and NODATA lifetimes; zero means
	// DefaultCacheMaxNegativeTTL.
	MaxNegativeTTL time.Duration
	// FailureTTL caps the caching of SERVFAIL and timeouts, from 1 s to
	// 5 min (RFC 9520 §3.2); zero means DefaultCacheFailureTTL.
	FailureTTL time.Duration
	// StaleAge bounds how long past expiry an answer is served while
	// every upstream fails (RFC 8767), at most 24 h; zero means
	// DefaultCacheStaleAge, negative disables stale answers.
	StaleAge time.Duration
	// StaleAnswerTimeout is how long a query whose answer has expired (and
	// is at most StaleAge old) waits for the upstreams before it gets the
	// stale answer, RFC 8767 §5's client response timer; their answer
	// still refreshes the cache when it comes. When every upstream is
	// known to be down (Upstreams.Down) the stale answer comes at once.
	// Zero (the default) or negative waits for the upstreams to answer or
	// fail: a stale answer only once every upstream failed or is down.
	// RFC 8767 §5 suggests 1.8 s (dnscache.SuggestedStaleAnswerTimeout).
	StaleAnswerTimeout time.Duration
	// Metrics, if not nil, receives counts.
	Metrics CacheMetrics
	// Now is the cache's clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Cache keeps upstream answers for a Chain, with the rules the stub's cache
// follows too:
//
//   - the key is the question's name (ASCII case folded), type and class
//     and the DO and CD bits: an answer or a negative answer for one type
//     never answers another, and nothing is synthesized from NSEC records;
//   - an answer lives for its smallest TTL, at most MaxTTL; NXDOMAIN and
//     NODATA for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), at most
//     MaxNegativeTTL, and not at all without an SOA;
//   - SERVFAIL, errors and timeouts are cached for 1 s, doubling while they
//     persist, at most FailureTTL (RFC 9520); meanwhile the key's queries
//     do not reach the upstreams;
//   - identical queries in flight are sent upstream once;
//   - an expired answer at most StaleAge old is served, with TTL 30 and
//     the Extended DNS Error "Stale Answer" (RFC 8767, RFC 8914 code 3),
//     when every upstream has just failed for its key, at once when every
//     upstream is known to be down, and, if StaleAnswerTimeout is set (off
//     by default), when they have not answered within it (RFC 8767 §5);
//     they are still
//     asked, and their answer refreshes the cache;
//   - answers are stored without their OPT record: each requester gets one
//     made from its own query, carrying only the answer's Extended DNS
//     Errors; queries with an ECS option skip the cache, and only they get
//     the upstream's ECS echo; a client's COOKIE is never forwarded;
//   - truncated answers, answers over 4 KiB and rcodes other than NOERROR
//     and NXDOMAIN are not cached; record data is kept as received (HTTPS
//     and SVCB records keep their ECH configs and hints).
//
// It holds at most Size entries, evicting the least recently used, and is
// safe for concurrent use.
type Cache struct {
	c *dnscache.Cache
}

// NewCache returns a cache configured by c.
func NewCache(c CacheConfig) (*Cache, error) {
	if c.Size < 0 {
		return nil, fmt.Errorf("cache: negative size %d", c.Size)
	}
	if c.StaleAge > dnscache.MaxStaleAge {
		return nil, fmt.Errorf("cache: stale age %v is above the maximum of %v", c.StaleAge, dnscache.MaxStaleAge)
	}
	dc, err := dnscache.New(dnscache.Config{
		Size:               c.Size,
		MaxTTL:             c.MaxTTL,
		MaxNegativeTTL:     c.MaxNegativeTTL,
		FailureTTL:         c.FailureTTL,
		StaleAge:           c.StaleAge,
		StaleAnswerTimeout: c.StaleAnswerTimeout,
		Metrics:            c.Metrics,
		Now:                c.Now,
	})
	if err != nil {
		return nil, err
	}
	return &Cache{c: dc}, nil
}

// Len returns the number of entries.
func (c *Cache) Len() int { return c.inner().Len() }

// Flush removes the entries of name (every type and class) and, with
// subtree, of every name below it; Flush(".", true) empties the cache. It
// returns the number of entries removed.
func (c *Cache) Flush(name string, subtree bool) int { return c.inner().Flush(name, subtree) }

func (c *Cache) inner() *dnscache.Cache {
	if c == nil {
		return nil
	}
	return c.c
}

// ChainConfig configures NewChain. Every field may be nil.
type ChainConfig struct {
	// Zone, if not nil, answers the names inside it; SetZone replaces it
	// while serving.
	Zone *Zone
	// Upstream answers what the zone does not; nil means such queries fail
	// (the Handler answers SERVFAIL). If it has a method Down() bool, as
	// Upstreams does, the Cache serves an expired answer stale at once
	// while it reports true.
	Upstream Resolver
	// Cache, if not nil, keeps the upstream's answers; nil forwards every
	// query. It needs an Upstream.
	Cache *Cache
}

// Chain answers from a local Zone first, then from the Cache, then from the
// Upstream; upstream answers are cached. Names inside the zone never reach
// the upstream. The zone can be swapped while serving (SetZone). Make one
// with NewChain; it is safe for concurrent use.
//
// Every answer gets an OPT record made for the requester when it sent one:
// its UDP size and DO bit, the upstream's Extended DNS Errors and, if the
// requester sent ECS, the upstream's ECS echo; no other option of the
// upstream's.
type Chain struct {
	upstream Resolver
	cache    *Cache
	zone     atomic.Pointer[Zone]
}

// NewChain returns the chain of c's zone, cache and upstream.
func NewChain(c ChainConfig) (*Chain, error) {
	if c.Cache != nil && c.Upstream == nil {
		return nil, errors.New("chain: a cache without an upstream would never hold anything")
	}
	ch := &Chain{upstream: c.Upstream, cache: c.Cache}
	ch.zone.Store(c.Zone)
	return ch, nil
}

// SetZone replaces the local zone (nil: none).
func (c *Chain) SetZone(z *Zone) { c.zone.Store(z) }

// Zone returns the local zone, or nil.
func (c *Chain) Zone() *Zone { return c.zone.Load() }

// Resolve implements Resolver.
func (c *Chain) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if r, ok := c.zone.Load().Answer(q); ok {
		return r, nil
	}
	if c.upstream == nil {
		return nil, errNoResolver
	}
	return c.cache.inner().ResolveUpstream(ctx, q, c.upstream)
}

package target

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Cache limits.
const (
	// DefaultCacheMaxTTL caps how long an answer is kept, whatever its TTL.
	DefaultCacheMaxTTL = time.Hour
	// maxCachedAnswer bounds the wire size of a cached answer, so that the
	// cache's memory is bounded by entries × this size.
	maxCachedAnswer = 4096
)

// Cache keeps upstream answers for their TTL. It holds at most a fixed
// number of answers, each at most 4 KiB in wire form, evicting the least
// recently used; answers with SERVFAIL, truncation or no TTL are not kept,
// nor answers to queries with an ECS or COOKIE option. TTLs of a cached
// answer count down; its OPT record is made afresh for each requester, so
// no client's EDNS(0) options reach another. It is safe for concurrent use.
type Cache struct {
	max    int
	maxTTL time.Duration
	now    func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, most recent first
	items map[cacheKey]*list.Element
}

type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do     bool // DNSSEC OK changes the answer
	cd     bool
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // never modified once stored
	stored  time.Time
	expires time.Time
}

// NewCache returns a cache of at most size answers kept at most maxTTL
// (zero: DefaultCacheMaxTTL). now is the clock (nil: time.Now).
func NewCache(size int, maxTTL time.Duration, now func() time.Time) *Cache {
	if maxTTL <= 0 {
		maxTTL = DefaultCacheMaxTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{max: size, maxTTL: maxTTL, now: now, lru: list.New(), items: make(map[cacheKey]*list.Element)}
}

// keyOf returns the cache key of q; ok is false for queries whose answers
// are not shared: more than one question, or an ECS or COOKIE option.
func keyOf(q *dns.Msg) (k cacheKey, ok bool) {
	if len(q.Question) != 1 || hasPrivateOption(q) {
		return cacheKey{}, false
	}
	qq := q.Question[0]
	k = cacheKey{name: lowerName(qq.Name), qtype: qq.Qtype, qclass: qq.Qclass, cd: q.CheckingDisabled}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k, true
}

// Get returns a copy of the cached answer to q with TTLs reduced by its age,
// q's ID and question and an OPT record made for q alone (see Put), or nil.
func (c *Cache) Get(q *dns.Msg) *dns.Msg {
	k, ok := keyOf(q)
	if !ok || c == nil {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		c.mu.Unlock()
		return nil
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	r := e.msg.Copy()
	r.Id = q.Id
	r.Question = q.Question
	answerOPT(r, q, false)
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(age, h.Ttl)
			}
		}
	}
	return r
}

// Put stores the answer r to q if it may be cached. Answers to queries
// with an ECS or COOKIE option are not: they belong to their sender. The
// answer is stored without its OPT record, whose options (an echoed ECS,
// the upstream's cookie) must not reach other clients; Get builds a fresh
// one for each requester.
func (c *Cache) Put(q, r *dns.Msg) {
	k, ok := keyOf(q)
	if !ok || c == nil || c.max <= 0 || r.Truncated {
		return
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return
	}
	ttl, ok := cacheTTL(r)
	if !ok {
		return
	}
	life := min(time.Duration(ttl)*time.Second, c.maxTTL)
	if life <= 0 || r.Len() > maxCachedAnswer {
		return
	}
	now := c.now()
	m := r.Copy()
	stripOPT(m)
	e := &cacheEntry{key: k, msg: m, stored: now, expires: now.Add(life)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// Len returns the number of cached answers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheTTL is the lifetime of an answer: the smallest TTL of its records,
// or for a negative answer the SOA's negative TTL (RFC 2308 §5).
func cacheTTL(r *dns.Msg) (uint32, bool) {
	ttl, found := uint32(0), false
	consider := func(t uint32) {
		if !found || t < ttl {
			ttl, found = t, true
		}
	}
	for _, rr := range r.Answer {
		consider(rr.Header().Ttl)
	}
	if len(r.Answer) == 0 {
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				consider(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
	}
	return ttl, found
}

// Chain answers from a local Zone first, then from the Cache, then from the
// Upstream; upstream answers are cached. Names inside the zone never reach
// the upstream. The zone can be swapped while serving (SetZone).
//
// Upstream answers get an OPT record made for the requester: its UDP size
// and DO bit, the upstream's Extended DNS Errors and, if the requester sent
// ECS, the upstream's ECS echo; no other option of the upstream's.
type Chain struct {
	// Upstream answers what the zone does not; nil means such queries fail.
	Upstream Resolver
	// Cache, if not nil, keeps upstream answers.
	Cache *Cache

	zone atomic.Pointer[Zone]
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
	if r := c.Cache.Get(q); r != nil {
		return r, nil
	}
	if c.Upstream == nil {
		return nil, errNoResolver
	}
	r, err := c.Upstream.Resolve(ctx, q)
	if err != nil {
		return nil, err
	}
	c.Cache.Put(q, r)
	answerOPT(r, q, hasECS(q))
	return r, nil
}

// Package dnscache is the DNS answer cache of the target and the stub: one
// set of rules for what is cached, under which key, for how long, and what
// a cached answer looks like to each requester. Both roles resolve through
// [Cache.Resolve], which also coalesces identical queries in flight and
// answers from stale data while the upstream fails, so that neither role
// turns an upstream outage into a query storm.
//
// Keys are the question's name (ASCII case folded, RFC 4343), type and class
// and the query's DO and CD bits: an answer, or a negative answer, for one
// type never answers another, and nothing is synthesized from NSEC or NSEC3
// records (no RFC 8198 aggressive use). Record data is kept as received, so
// HTTPS and SVCB records (RFC 9460) keep their ECH configs and address hints.
//
// Lifetimes:
//   - an answer lives for the smallest TTL of its records, at most MaxTTL;
//   - a negative answer (NXDOMAIN, or NODATA: no record of the type) lives
//     for min(SOA TTL, SOA MINIMUM) of its authority section (RFC 2308 §5),
//     at most MaxNegativeTTL; without an SOA it is not cached (RFC 2308 §5);
//   - a resolution failure (SERVFAIL, an error or a timeout) is cached for
//     1 s, doubling while the key keeps failing, at most FailureTTL (RFC 9520
//     §3.2); meanwhile the key's queries are answered without asking the
//     upstream;
//   - an expired answer is kept for StaleAge and served, with TTL 30 and the
//     Extended DNS Error "Stale Answer" (RFC 8767 §4, RFC 8914 code 3), when
//     the upstream has just failed for its key, when it is known to be down
//     (at once), or, if StaleAnswerTimeout is set (off by default), when it
//     has not answered within it (RFC 8767 §5's client response timer);
//     in the last two cases the
//     upstream is still asked, and its answer refreshes the cache when it
//     comes.
//
// Truncated answers, answers larger than MaxAnswerSize, rcodes other than
// NOERROR and NXDOMAIN and answers with TTL 0 are passed on, not cached.
//
// EDNS(0) is per hop (RFC 6891 §7): an answer is stored without its OPT
// record and each requester gets one made from its own query (its UDP size
// and DO bit), carrying the answer's Extended DNS Errors and nothing else of
// the upstream's. A query with an ECS option (RFC 7871) is never answered
// from the cache nor coalesced, and only it gets the upstream's ECS echo. A
// COOKIE (RFC 7873) is per hop too: it is never part of a key, never
// forwarded, never stored.
package dnscache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/odohd/odoh/internal/dnsname"
)

// Defaults and limits of the settings.
const (
	// DefaultSize is the number of entries a cache holds by default.
	DefaultSize = 10000
	// DefaultMaxTTL caps how long an answer is kept, whatever its TTL.
	DefaultMaxTTL = time.Hour
	// DefaultMaxNegativeTTL caps how long a negative answer is kept
	// (RFC 2308 §5 suggests one to three hours).
	DefaultMaxNegativeTTL = time.Hour
	// MinFailureTTL is how long a resolution failure is cached the first
	// time (RFC 9520 §3.2: at least one second).
	MinFailureTTL = time.Second
	// DefaultFailureTTL caps the caching of a failure by default. At one
	// second, an answer returns within a second of the upstream's return.
	DefaultFailureTTL = time.Second
	// MaxFailureTTL is the largest FailureTTL (RFC 9520 §3.2: five minutes).
	MaxFailureTTL = 5 * time.Minute
	// DefaultStaleAge is how long past its expiry an answer may be served
	// while the upstream fails, by default.
	DefaultStaleAge = 24 * time.Hour
	// SuggestedStaleAnswerTimeout is RFC 8767 §5's client response timer,
	// under the 2 s after which stub resolvers commonly give up. It is not
	// the default: by default a stale answer is served only once every
	// upstream has failed, or while the upstream reports itself down, so
	// that a slow but working upstream is never answered for by old data.
	SuggestedStaleAnswerTimeout = 1800 * time.Millisecond
	// MaxStaleAge is the largest StaleAge.
	MaxStaleAge = 24 * time.Hour
	// StaleTTL is the TTL of the records of a stale answer (RFC 8767 §4).
	StaleTTL = 30
	// MaxAnswerSize bounds the wire size of a cached answer, so that a
	// cache's memory is bounded by its size × this.
	MaxAnswerSize = 4096
	// UpstreamUDPSize is the EDNS(0) UDP size of the queries a cache sends
	// upstream (the 2020 DNS flag day's 1232 bytes).
	UpstreamUDPSize = 1232
)

// Errors of Resolve. A Fetch error is returned as it is, or wrapped in
// ErrCachedFailure when the cache answers for it again.
var (
	// ErrCachedFailure: the key's resolution failed moments ago and the
	// upstream is not asked again until the failure expires (RFC 9520).
	ErrCachedFailure = errors.New("resolution failed moments ago (cached failure)")
	// ErrNotSent is for Fetch implementations: a Fetch error wrapping it
	// means the query never reached the upstream (a local limit), so it is
	// not cached as the upstream's failure.
	ErrNotSent = errors.New("query not sent upstream")
)

// Fetch asks the upstream. It must not keep q, and it owns the answer it
// returns (the cache changes it).
type Fetch func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)

// Resolve calls f: a Fetch is an Upstream.
func (f Fetch) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) { return f(ctx, q) }

// Upstream is what ResolveUpstream asks: its Resolve is a Fetch. An
// Upstream that can tell when it cannot answer also implements
// DownReporter.
type Upstream interface {
	Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// DownReporter is implemented by an Upstream that knows when it is down
// (every one of its servers failing, say). Down must be cheap: it is asked
// for each query whose answer has expired and may be served stale, which
// then gets the stale answer at once (RFC 8767 §5) while the upstream is
// still asked in the background.
type DownReporter interface {
	Down() bool
}

// Metrics receives what a cache reports; every method must be safe for
// concurrent use and cheap.
type Metrics interface {
	// CacheHit counts a query answered from a live entry.
	CacheHit()
	// CacheMiss counts a query that had to ask the upstream (coalesced
	// ones included).
	CacheMiss()
	// CacheStale counts a stale answer served because the upstream failed.
	CacheStale()
	// CacheFailure counts a query answered with a cached failure.
	CacheFailure()
	// CacheCoalesced counts a query that joined an identical one in
	// flight instead of asking the upstream itself.
	CacheCoalesced()
	// CacheFlush counts a flush and the entries it removed.
	CacheFlush(removed int)
	// CacheEntries reports the number of entries held.
	CacheEntries(n int)
}

// Config configures New. Zero values mean the documented defaults.
type Config struct {
	// Size bounds the number of entries (answers and failures); the least
	// recently used goes first. Zero means DefaultSize; negative disables
	// the cache: every query is forwarded as it comes, uncoalesced.
	Size int
	// MaxTTL caps the lifetime of answers; zero means DefaultMaxTTL.
	MaxTTL time.Duration
	// MaxNegativeTTL caps the lifetime of negative answers; zero means
	// DefaultMaxNegativeTTL.
	MaxNegativeTTL time.Duration
	// FailureTTL caps the caching of resolution failures, between
	// MinFailureTTL and MaxFailureTTL; zero means DefaultFailureTTL.
	FailureTTL time.Duration
	// StaleAge bounds how long past expiry an answer is served while the
	// upstream fails, at most MaxStaleAge; zero means DefaultStaleAge,
	// negative disables serving stale answers.
	StaleAge time.Duration
	// StaleAnswerTimeout is how long a query whose answer has expired, and
	// may be served stale, waits for the upstream before it gets the stale
	// answer (RFC 8767 §5's client response timer). The upstream's answer
	// still refreshes the cache when it comes. Zero or negative (the
	// default) waits for the upstream, so that a stale answer is served
	// only once it failed or is known to be down; RFC 8767 §5 suggests
	// SuggestedStaleAnswerTimeout.
	StaleAnswerTimeout time.Duration
	// Metrics, if not nil, receives counts.
	Metrics Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache is a bounded DNS answer cache with coalescing, failure caching and
// serve-stale. A nil or disabled *Cache forwards every query. It is safe for
// concurrent use.
type Cache struct {
	maxTTL, maxNegTTL, failTTL time.Duration
	staleAge                   time.Duration // < 0: off
	staleWait                  time.Duration // <= 0: wait for the upstream
	metrics                    Metrics
	now                        func() time.Time
	group                      singleflight.Group

	mu  sync.Mutex
	lru *lru.LRU[key, *entry] // nil: disabled
	// gen counts flushes: an answer fetched across a flush is not stored,
	// so that a flush is never undone by a query that was in flight.
	gen uint64
}

// New returns a cache configured by c.
func New(c Config) (*Cache, error) {
	x := &Cache{
		maxTTL:    orDefault(c.MaxTTL, DefaultMaxTTL),
		maxNegTTL: orDefault(c.MaxNegativeTTL, DefaultMaxNegativeTTL),
		failTTL:   orDefault(c.FailureTTL, DefaultFailureTTL),
		staleAge:  orDefault(c.StaleAge, DefaultStaleAge),
		staleWait: c.StaleAnswerTimeout,
		metrics:   c.Metrics,
		now:       c.Now,
	}
	switch {
	case x.maxTTL < 0 || x.maxNegTTL < 0:
		return nil, errors.New("cache: negative maximum TTL")
	case x.failTTL < MinFailureTTL || x.failTTL > MaxFailureTTL:
		return nil, fmt.Errorf("cache: failure TTL %v is outside %v to %v (RFC 9520 §3.2)", x.failTTL, MinFailureTTL, MaxFailureTTL)
	case x.staleAge > MaxStaleAge:
		return nil, fmt.Errorf("cache: stale age %v is above the maximum of %v", x.staleAge, MaxStaleAge)
	}
	if x.now == nil {
		x.now = time.Now
	}
	if x.metrics == nil {
		x.metrics = noMetrics{}
	}
	if c.Size >= 0 {
		l, err := lru.NewLRU[key, *entry](orDefault(c.Size, DefaultSize), nil)
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		x.lru = l
	}
	return x, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// entry is what a cache holds for one key: an answer, a recent failure, or
// both (a stale answer kept while the upstream fails). Guarded by Cache.mu;
// the messages it points to are never modified once stored.
type entry struct {
	ans *stored // nil: no answer

	// Failure state (RFC 9520): until failUntil the key's queries get the
	// failure (or the stale answer) without asking the upstream.
	failUntil time.Time
	fails     int     // consecutive failures, for the backoff
	failed    *stored // the upstream's SERVFAIL, or nil with failErr
	failErr   error
}

// stored is an answer as kept: without OPT, with its Extended DNS Errors
// aside, and when it was received and expires.
type stored struct {
	msg     *dns.Msg
	ede     []dns.EDNS0
	at      time.Time
	expires time.Time
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	if c == nil || c.lru == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Resolve answers q: from the cache when it holds a live answer, else
// through fetch, joining an identical query already in flight. The answer
// has q's ID and question and an OPT record made for q (see the package
// doc). When the upstream fails, or has not answered within
// StaleAnswerTimeout, Resolve serves a stale answer if it may; else it
// returns the upstream's SERVFAIL or fetch's error (wrapped in
// ErrCachedFailure while the failure is cached). ctx bounds the caller's
// wait; a fetch shared with others, or outlived by a stale answer, runs
// until the first caller's deadline and is cached when it succeeds.
func (c *Cache) Resolve(ctx context.Context, q *dns.Msg, fetch Fetch) (*dns.Msg, error) {
	return c.ResolveUpstream(ctx, q, fetch)
}

// ResolveUpstream is Resolve through up; when up is a DownReporter that
// reports itself down, a query whose expired answer may be served stale
// gets it at once.
func (c *Cache) ResolveUpstream(ctx context.Context, q *dns.Msg, up Upstream) (*dns.Msg, error) {
	if c == nil || c.lru == nil || !Cacheable(q) {
		return passThrough(ctx, q, up)
	}
	k := keyOf(q)
	r, stale, err, ok := c.lookup(k, q)
	if ok {
		return r, err
	}
	c.metrics.CacheMiss()
	return c.fetch(ctx, k, q, up, stale)
}

// Cacheable reports whether answers to q are shared through a cache: one
// question, opcode QUERY, and no ECS option (an answer to a subnet is that
// subnet's, RFC 7871 §7.3).
func Cacheable(q *dns.Msg) bool {
	return len(q.Question) == 1 && q.Opcode == dns.OpcodeQuery && !HasECS(q)
}

// passThrough forwards q without its cookie and makes the answer's OPT for
// q, with the upstream's ECS echo when q sent ECS.
func passThrough(ctx context.Context, q *dns.Msg, up Upstream) (*dns.Msg, error) {
	fq := q
	if hasCookie(q) {
		fq = ForwardQuery(q) // a copy only when there is something to drop
	}
	r, err := up.Resolve(ctx, fq)
	if err != nil {
		return nil, err
	}
	ede, echo := answerOptions(r)
	if !HasECS(q) {
		echo = nil
	}
	stripOPT(r)
	r.Id = q.Id
	setOPT(r, q, ede, echo)
	return r, nil
}

// lookup answers q from the entry of k, if it may. When it may not, it
// returns the entry's expired answer that may still be served stale, if
// there is one.
func (c *Cache) lookup(k key, q *dns.Msg) (r *dns.Msg, stale *stored, err error, ok bool) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.lru.Get(k)
	if !ok {
		c.mu.Unlock()
		return nil, nil, nil, false
	}
	if a := e.ans; a != nil && now.Before(a.expires) {
		c.mu.Unlock()
		c.metrics.CacheHit()
		return reply(q, a, now, false), nil, nil, true
	}
	if now.Before(e.failUntil) {
		o := c.failureOutcome(e, now)
		c.mu.Unlock()
		r, err := o.answer(q, now)
		if o.stale {
			c.metrics.CacheStale()
		} else {
			c.metrics.CacheFailure()
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrCachedFailure, err)
			}
		}
		return r, nil, err, true
	}
	switch {
	case e.ans == nil:
	case c.staleUsable(e.ans, now):
		stale = e.ans // stored answers are never modified: safe unlocked
	case e.fails == 0:
		// Dead and with no failure history worth keeping.
		c.lru.Remove(k)
		c.metrics.CacheEntries(c.lru.Len())
	}
	c.mu.Unlock()
	return nil, stale, nil, false
}

// outcome is the result of one fetch (or one cached failure), shared by
// every caller waiting for it.
type outcome struct {
	ans   *stored // an answer (fresh, stale, or a SERVFAIL), or nil with err
	stale bool
	err   error
}

func (o *outcome) answer(q *dns.Msg, now time.Time) (*dns.Msg, error) {
	if o.ans == nil {
		return nil, o.err
	}
	return reply(q, o.ans, now, o.stale), nil
}

// failureOutcome is what a query gets while e's failure is cached: the stale
// answer if usable, else the failure. Called with c.mu held.
func (c *Cache) failureOutcome(e *entry, now time.Time) *outcome {
	if e.ans != nil && c.staleUsable(e.ans, now) {
		return &outcome{ans: e.ans, stale: true}
	}
	return &outcome{ans: e.failed, err: e.failErr}
}

func (c *Cache) staleUsable(a *stored, now time.Time) bool {
	return c.staleAge >= 0 && now.Sub(a.expires) <= c.staleAge
}

// fetch asks the upstream for k once for every caller waiting on it. With
// stale, the expired answer that may be served, the caller gets it at once
// if up reports itself down, and after c.staleWait if the upstream has not
// answered by then; the fetch goes on either way, and stores its answer.
func (c *Cache) fetch(ctx context.Context, k key, q *dns.Msg, up Upstream, stale *stored) (*dns.Msg, error) {
	uq := upstreamQuery(q, k)
	ran := false // read only once the flight is over
	ch := c.group.DoChan(k.String(), func() (any, error) {
		ran = true
		c.mu.Lock()
		gen := c.gen
		done := c.settled(k)
		c.mu.Unlock()
		if done != nil {
			// A flight that ended between this caller's lookup and
			// its DoChan stored what the key needs.
			return done, nil
		}
		// The callers share this fetch: one giving up, or answered
		// stale, must not end it for the others or for the cache, so it
		// runs until the first caller's deadline.
		fctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithDeadline(fctx, d)
		}
		defer cancel()
		r, err := up.Resolve(fctx, uq)
		return c.store(k, gen, r, err), nil
	})
	var late <-chan time.Time // the client response timer (RFC 8767 §5)
	if stale != nil {
		if d, ok := up.(DownReporter); ok && d.Down() {
			return c.serveStale(q, stale), nil
		}
		if c.staleWait > 0 {
			t := time.NewTimer(c.staleWait)
			defer t.Stop()
			late = t.C
		}
	}
	select {
	case res := <-ch:
		if !ran {
			c.metrics.CacheCoalesced()
		}
		o := res.Val.(*outcome)
		if o.stale {
			c.metrics.CacheStale()
		}
		return o.answer(q, c.now())
	case <-late:
		return c.serveStale(q, stale), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// settled returns what lookup would now answer k with without asking the
// upstream (a fresh answer, or a cached failure), or nil. Called with c.mu
// held.
func (c *Cache) settled(k key) *outcome {
	e, ok := c.lru.Peek(k)
	if !ok {
		return nil
	}
	now := c.now()
	if a := e.ans; a != nil && now.Before(a.expires) {
		return &outcome{ans: a}
	}
	if now.Before(e.failUntil) {
		return c.failureOutcome(e, now)
	}
	return nil
}

// serveStale answers q with the expired answer a while the upstream is
// still asked.
func (c *Cache) serveStale(q *dns.Msg, a *stored) *dns.Msg {
	c.metrics.CacheStale()
	return reply(q, a, c.now(), true)
}

// store keeps what the upstream said about k and returns what the callers
// get: the answer, or on failure the stale answer or the failure.
func (c *Cache) store(k key, gen uint64, r *dns.Msg, err error) *outcome {
	now := c.now()
	if err == nil && r.Rcode != dns.RcodeServerFailure {
		a := keep(r, now)
		life, ok := c.lifetime(a)
		if !ok {
			return &outcome{ans: a}
		}
		a.expires = now.Add(life)
		c.mu.Lock()
		if c.gen == gen {
			c.lru.Add(k, &entry{ans: a})
			c.metrics.CacheEntries(c.lru.Len())
		}
		c.mu.Unlock()
		return &outcome{ans: a}
	}
	if errors.Is(err, ErrNotSent) {
		return &outcome{err: err}
	}
	var failed *stored
	if err == nil {
		failed = keep(r, now) // the upstream's SERVFAIL, its EDEs kept
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Peek(k)
	if !ok || c.gen != gen {
		e = &entry{}
	} else {
		// Entries are shared with lookups only under c.mu, so a
		// replacement keeps readers of the old one consistent.
		cp := *e
		e = &cp
	}
	if now.Sub(e.failUntil) > c.failTTL {
		e.fails = 0 // an old failure: start the backoff afresh
	}
	e.fails++
	backoff := MinFailureTTL << min(e.fails-1, 20)
	e.failUntil = now.Add(min(backoff, c.failTTL))
	e.failed, e.failErr = failed, err
	c.lru.Add(k, e)
	c.metrics.CacheEntries(c.lru.Len())
	return c.failureOutcome(e, now)
}

// lifetime is how long answer a may be cached, and whether it may be.
func (c *Cache) lifetime(a *stored) (time.Duration, bool) {
	m := a.msg
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) || m.Len() > MaxAnswerSize {
		return 0, false
	}
	ttl, _ := TTL(m)
	negative := m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
	if negative && !hasSOA(m) {
		return 0, false // RFC 2308 §5: no SOA, no negative caching
	}
	limit := c.maxTTL
	if negative {
		limit = c.maxNegTTL
	}
	for _, o := range a.ede {
		if o.(*dns.EDNS0_EDE).InfoCode == dns.ExtendedErrorCodeStaleAnswer {
			// The upstream itself serves stale data: hold it no longer
			// than a failure, so that its recovery shows at once.
			limit = min(limit, c.failTTL)
		}
	}
	life := min(time.Duration(ttl)*time.Second, limit)
	return life, life > 0
}

// TTL is the freshness lifetime of answer m: the smallest TTL of its
// records (OPT aside), an SOA of the authority section counting as
// min(TTL, MINIMUM) (RFC 2308 §5). ok is false when m has no record.
func TTL(m *dns.Msg) (ttl uint32, ok bool) {
	ttl = ^uint32(0)
	for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			t := h.Ttl
			if soa, isSOA := rr.(*dns.SOA); isSOA && i == 1 {
				t = min(t, soa.Minttl)
			}
			ttl, ok = min(ttl, t), true
		}
	}
	if !ok {
		return 0, false
	}
	return ttl, true
}

// hasSOA reports whether m's authority section has an SOA record.
func hasSOA(m *dns.Msg) bool {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

// Flush removes the entries of name, of every type and class, and with
// subtree those of every name below it too; Flush(".", true) empties the
// cache. It returns the number of entries removed. Queries in flight when
// it runs are answered but not cached.
func (c *Cache) Flush(name string, subtree bool) int {
	if c == nil || c.lru == nil {
		return 0
	}
	name = dnsname.Lower(dns.Fqdn(name))
	c.mu.Lock()
	n := 0
	if subtree && name == "." {
		n = c.lru.Len()
		c.lru.Purge()
	} else {
		for _, k := range c.lru.Keys() {
			if k.name == name || subtree && dns.IsSubDomain(name, k.name) {
				c.lru.Remove(k)
				n++
			}
		}
	}
	c.gen++
	l := c.lru.Len()
	c.mu.Unlock()
	c.metrics.CacheFlush(n)
	c.metrics.CacheEntries(l)
	return n
}

type noMetrics struct{}

func (noMetrics) CacheHit()        {}
func (noMetrics) CacheMiss()       {}
func (noMetrics) CacheStale()      {}
func (noMetrics) CacheFailure()    {}
func (noMetrics) CacheCoalesced()  {}
func (noMetrics) CacheFlush(int)   {}
func (noMetrics) CacheEntries(int) {}

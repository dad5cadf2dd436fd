package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// ConfigSource says where the client gets a target's configs.
type ConfigSource int

const (
	// ConfigDefault, the zero value, is ConfigViaTunnel when the client
	// has a proxy, and ConfigFromTarget in direct mode (where the target
	// sees the client's address with every query anyway).
	ConfigDefault ConfigSource = iota
	// ConfigViaTunnel fetches https://TARGET/.well-known/odohconfigs in
	// the client's own TLS session with the target, carried through the
	// proxy by HTTP CONNECT (RFC 9110 §9.3.6; over HTTP/2 RFC 9113 §8.5,
	// over HTTP/3 RFC 9114 §4.4). The target's certificate is verified for
	// its name (and its pins), so the proxy can neither forge nor alter
	// the configs; the target sees the proxy's address, never the
	// client's. The session resumes nothing, so no ticket ties one fetch
	// to the next.
	//
	// Key consistency: the same configs are also fetched through the
	// proxy's config relay, which caches one copy for every client, and
	// the client uses only a config that both hold. A target that gave
	// this client a key of its own, to link its queries, is caught:
	// ErrInconsistentConfigs. A key that the tunnel alone shows is never
	// used, whatever its max-age: a target can tell the relay's fetches
	// from the tunnel's, so only the relay's copy is the same for every
	// client. At a key rotation the relay's copy may lag (or, across
	// replicas with skewed clocks, lead) the tunnel's for a few seconds:
	// a client then keeps the config it last found in both, if either
	// set still holds it, and checks again within ConsistencyWindow; a
	// client that has none (its first fetch, right at the rotation) fails
	// until the relay's copy catches up. A relay that does not answer, or
	// answers something else than the target's configs, fails the check
	// in the same way: a target cannot escape it by failing the proxy's
	// fetches.
	//
	// A proxy without the tunnel (a plain ODoH relay, such as
	// Cloudflare's or RouteDNS's) answers CONNECT with an error:
	// ErrNoTunnel. Its own configs are never used. Choose then between
	// ConfigFromTarget (authenticated, at a privacy cost), ConfigStatic,
	// or ConfigViaRelay with a key pin.
	ConfigViaTunnel
	// ConfigFromTarget fetches https://TARGET/.well-known/odohconfigs
	// directly. It costs privacy: the target sees the client's address at
	// each fetch, and a fetch that closely precedes a query lets the
	// target tie that query to the address by timing. With a proxy the
	// client therefore keeps the configs fresh in the background, at a
	// random point between 80% and 90% of their max-age, and after a 401
	// it fails the query (odoh.ErrKeyMismatch) and fetches again after a
	// random delay of up to RefetchDelay instead of fetching on the query
	// path. A fetch still happens on the query path for the first query
	// (unless Configs was called first) and when background fetches have
	// failed until the configs expired.
	ConfigFromTarget
	// ConfigViaRelay fetches the configs through a proxy's config relay,
	// GET PROXY-ORIGIN/.well-known/odohconfigs?targethost=HOST[:PORT].
	// Nothing proves that the relay's answer is the target's, so New
	// accepts this source only for targets with a key pin (Pin.KeyID):
	// only pinned configs are used.
	ConfigViaRelay
	// ConfigStatic uses Config.StaticConfigs and never fetches. A 401 is
	// then final.
	ConfigStatic
)

func (s ConfigSource) String() string {
	switch s {
	case ConfigDefault:
		return "default"
	case ConfigViaTunnel:
		return "tunnel"
	case ConfigFromTarget:
		return "target"
	case ConfigViaRelay:
		return "relay"
	case ConfigStatic:
		return "static"
	}
	return "ConfigSource(" + strconv.Itoa(int(s)) + ")"
}

// ConsistencyWindow bounds how long a client keeps a config that the
// tunnel's and the relay's sets no longer both hold (see ConfigViaTunnel)
// before it checks again: a key rotation in progress, seen by a relay
// whose shared copy lags or leads. It covers the proxy's minimum cache age
// (10 s by default) and clock skew between a target's replicas.
const ConsistencyWindow = 2 * time.Minute

// configSet is one fetched (or static) ObliviousDoHConfigs list.
type configSet struct {
	cfg     *odoh.Config   // the config queries are sealed to
	all     []*odoh.Config // every usable config, in the target's order
	expires time.Time      // zero for static configs: never
	maxAge  time.Duration  // the clamped lifetime it was fetched with
}

func (s *configSet) static() bool { return s.expires.IsZero() }

func (s *configSet) fresh(now time.Time) bool { return s.static() || now.Before(s.expires) }

// newConfigSet parses a configs body fetched with a Cache-Control value.
func newConfigSet(body []byte, cacheControl []string, now time.Time) (*configSet, error) {
	all, err := odoh.ParseConfigs(body)
	if err != nil {
		return nil, err
	}
	ttl := maxAge(cacheControl)
	return &configSet{cfg: all[0], all: all, expires: now.Add(ttl), maxAge: ttl}, nil
}

// configSource obtains a target's configs by one path. Each
// implementation below is one ConfigSource.
type configSource interface {
	// fetch returns t's configs, by way of proxy pi (-1: none) where the
	// path uses one.
	fetch(ctx context.Context, t *target, pi int) (*configSet, error)
}

// staticSource is ConfigStatic: the same set for every target, always.
type staticSource struct{ set *configSet }

func (s staticSource) fetch(context.Context, *target, int) (*configSet, error) { return s.set, nil }

// targetSource is ConfigFromTarget: GET from the target itself.
type targetSource struct{ c *Client }

func (s targetSource) fetch(ctx context.Context, t *target, _ int) (*configSet, error) {
	u := url.URL{Scheme: "https", Host: t.url.Host, Path: odoh.ConfigsPath}
	return getConfigs(ctx, s.c.hc.Transport, u.String(), "")
}

// relaySource is ConfigViaRelay, and the consistency check of the tunnel:
// GET through the proxy's config relay.
type relaySource struct{ c *Client }

func (s relaySource) fetch(ctx context.Context, t *target, pi int) (*configSet, error) {
	p := s.c.proxies[max(pi, 0)]
	u := p.tmpl.Origin() + odoh.ConfigsPath + "?" + url.Values{"targethost": {t.url.Host}}.Encode()
	set, err := getConfigs(ctx, s.c.hc.Transport, u, " (the proxy's config relay)")
	if err != nil {
		// The proxy's fault, unless its Proxy-Status blames the target.
		return nil, &relayError{err}
	}
	return set, nil
}

// tunnelSource is ConfigViaTunnel: GET in a TLS session with the target,
// through the proxy's CONNECT tunnel, checked against the relay.
type tunnelSource struct{ c *Client }

func (s tunnelSource) fetch(ctx context.Context, t *target, pi int) (*configSet, error) {
	p := s.c.proxies[max(pi, 0)]
	tun, err := s.c.tunnelConfigs(ctx, p, t)
	if err != nil {
		return nil, err
	}
	// After the tunnel, not beside it: a proxy that failed gets one
	// request, and the relay's answer is never waited for in vain.
	rel, err := relaySource(s).fetch(ctx, t, pi)
	if errors.Is(err, odoh.ErrMalformed) || errors.Is(err, odoh.ErrUnsupported) {
		// It answered, with something else than the target's configs.
		return nil, fmt.Errorf("%w: %w: %w", ErrConfig, ErrInconsistentConfigs, err)
	}
	return consistent(t, tun, rel, err, time.Now())
}

// consistent returns the set to use, given the target's own configs (tun,
// authenticated) and the relay's (rel, shared by every client of the
// proxy; nil with relErr when the relay did not answer), by the rule of
// consistentKey; t remembers the config last seen in both.
func consistent(t *target, tun, rel *configSet, relErr error, now time.Time) (*configSet, error) {
	var relAll, prev []*odoh.Config
	if rel != nil {
		relAll = rel.all
	}
	if p := t.cfg.agreed.Load(); p != nil {
		prev = []*odoh.Config{p}
	}
	c, agreed, ok := consistentKey(tun.all, relAll, prev)
	out := *tun
	switch {
	case agreed:
		t.cfg.agreed.Store(c)
		out.cfg = c
		return &out, nil
	case ok:
		// A config seen in both before: no new key for this client alone.
		// Checked again soon.
		ttl := min(tun.maxAge, ConsistencyWindow)
		if rel != nil {
			ttl = min(ttl, rel.maxAge)
		}
		out.cfg, out.all, out.maxAge, out.expires = c, []*odoh.Config{c}, ttl, now.Add(ttl)
		return &out, nil
	case relErr != nil:
		return nil, fmt.Errorf("%w: the proxy's config relay did not answer, and configs of %s that it did not confirm are not used: %w",
			ErrConfig, t.url.Host, relErr)
	}
	return nil, fmt.Errorf("%w: %s published key %x through the tunnel, the proxy's relay holds %x for every client: %w",
		ErrConfig, t.url.Host, tun.cfg.KeyID(), rel.cfg.KeyID(), ErrInconsistentConfigs)
}

// consistentKey is the key consistency rule of the tunnel (see
// ConfigViaTunnel), for ODoH configs and OHTTP key configurations alike.
// Given the target's own list (tun, authenticated now), the relay's copy
// (rel, shared by every client; nil if it did not answer) and the key
// this client last saw in both (prev, at most one), it returns the key to
// use: the first of tun's that rel also holds (agreed); else prev, if tun
// or rel still holds it (a rotation in progress, seen by a relay that
// lags or leads: prev was the target's and every client's); else none
// (ok false). A key of tun's that no relay holds is never used: the
// target could have made it for this client alone.
func consistentKey[C interface{ Equal(C) bool }](tun, rel, prev []C) (key C, agreed, ok bool) {
	if k, ok := agree(tun, rel); ok {
		return k, true, true
	}
	if k, ok := agree(prev, tun); ok {
		return k, false, true
	}
	if k, ok := agree(prev, rel); ok {
		return k, false, true
	}
	return key, false, false
}

// agree returns the first of a that b also holds.
func agree[C interface{ Equal(C) bool }](a, b []C) (C, bool) {
	for _, c := range a {
		for _, r := range b {
			if c.Equal(r) {
				return c, true
			}
		}
	}
	var zero C
	return zero, false
}

// getConfigs GETs a configs list at u over rt; via names the path in
// errors ("" for the target itself).
func getConfigs(ctx context.Context, rt http.RoundTripper, u, via string) (*configSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header = http.Header{"User-Agent": hdrUA}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w%s: %w", ErrConfig, via, newHTTPError(u, resp))
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, odoh.MaxConfigsSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	set, err := newConfigSet(body, resp.Header["Cache-Control"], time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: parsing configs from %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	return set, nil
}

// relayError marks a failure of a proxy's config relay, which is the
// proxy's fault unless its Proxy-Status blames the target.
type relayError struct{ err error }

func (e *relayError) Error() string { return e.err.Error() }
func (e *relayError) Unwrap() error { return e.err }

// maxAge is the lifetime of fetched configs: odoh.MaxAge for a private
// cache, clamped to [MinConfigTTL, MaxConfigTTL], or DefaultConfigTTL when
// the header gives none.
func maxAge(cacheControl []string) time.Duration {
	age, ok := odoh.MaxAge(cacheControl, false)
	if !ok {
		return DefaultConfigTTL
	}
	return min(max(age, MinConfigTTL), MaxConfigTTL)
}

// configs is the client's config state: each target's current set, the
// fetch in flight, the remembered failure and, in background mode, the
// next scheduled fetch, all kept by the methods below.
type configs struct {
	c      *Client
	source configSource
	// background: configs come from the target while queries go through
	// a proxy, so fetches are kept off the query path (ConfigFromTarget).
	background bool
	// usesProxy: the source's fetches go through the query's proxy, so a
	// failure is that proxy's and remembered for it alone.
	usesProxy bool
	// refreshIn and refetchIn pick the delay of a background fetch: before
	// expiry of configs of the given lifetime, and after a 401. Fields, so
	// that tests can shorten them.
	refreshIn func(ttl time.Duration) time.Duration
	refetchIn func() time.Duration
	// flights shares one fetch between every caller that needs a
	// target's configs at the same time.
	flights singleflight.Group
	// bg bounds the fetches, which outlive the query that started them;
	// Close cancels it.
	bg     context.Context
	cancel context.CancelFunc
}

// targetConfigs is one target's part of the config state.
type targetConfigs struct {
	cur atomic.Pointer[configSet] // the hot path: one atomic load
	// agreed is the config last found in both the tunnel's and the
	// relay's sets (ConfigViaTunnel).
	agreed atomic.Pointer[odoh.Config]

	mu sync.Mutex
	// failed is the last failed fetch; until it expires, queries get its
	// error instead of fetching again.
	failed *fetchFailure
	fails  int         // fetches failed in a row
	timer  *time.Timer // the next background fetch
	// refetching: a background fetch after a 401 is scheduled.
	refetching bool
}

type fetchFailure struct {
	err   error
	until time.Time
	proxy int // the proxy the fetch went through (-1: none)
}

func newConfigs(c *Client, src configSource, background, usesProxy bool) *configs {
	m := &configs{c: c, source: src, background: background, usesProxy: usesProxy,
		refreshIn: refreshDelay, refetchIn: refetchDelay}
	m.bg, m.cancel = context.WithCancel(context.Background())
	return m
}

// get returns t's current configs, fetching them when missing or expired.
func (m *configs) get(ctx context.Context, t *target, pi int) (*configSet, error) {
	if s := t.cfg.cur.Load(); s != nil && s.fresh(time.Now()) {
		return s, nil
	}
	return m.refresh(ctx, t, nil, pi)
}

// refresh fetches t's configs unless someone already replaced stale with
// a fresh set (stale is nil when the set is merely missing or expired),
// or a fetch through the same proxy failed within its backoff. Concurrent
// callers share one fetch, so a rotation seen by many queries at once
// costs exactly one.
func (m *configs) refresh(ctx context.Context, t *target, stale *configSet, pi int) (*configSet, error) {
	now := time.Now()
	t.cfg.mu.Lock()
	cur, failed := t.cfg.cur.Load(), t.cfg.failed
	t.cfg.mu.Unlock()
	if cur != nil && cur != stale && cur.fresh(now) {
		return cur, nil
	}
	if failed != nil && failed.proxy == m.via(pi) && now.Before(failed.until) {
		return nil, failed.err
	}
	ch := m.flights.DoChan(t.str, func() (any, error) {
		// A flight that ended since the check above may have brought
		// what this one is for.
		if cur := t.cfg.cur.Load(); cur != nil && cur != stale && cur.fresh(time.Now()) {
			return cur, nil
		}
		return m.fetch(t, pi)
	})
	deadline := func(cause error) error {
		return fmt.Errorf("%w: the query's deadline came while fetching the configs of target %s%s: %w",
			ErrConfig, t.url.Host, m.fetchedFrom(pi), cause)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			if cause := ended(ctx); cause != nil {
				return nil, deadline(cause)
			}
			return nil, r.Err
		}
		return r.Val.(*configSet), nil
	case <-ctx.Done():
		return nil, deadline(ctx.Err())
	}
}

// ended returns why the query's ctx ended (DeadlineExceeded once its
// deadline has passed, even before ctx's own timer has run), or nil while
// it lives. A shared fetch that failed has the query's own timeout, so the
// two end together: which of the two a query sees first is chance, and
// its error names its own deadline either way.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// fetchedFrom says where the configs of a query through proxy pi come
// from, for errors: " through the tunnel of https://proxy.example", ….
func (m *configs) fetchedFrom(pi int) string {
	origin := ""
	if pi >= 0 {
		origin = m.c.proxies[pi].tmpl.Origin()
	}
	switch m.source.(type) {
	case tunnelSource:
		return " through the tunnel of " + origin
	case relaySource:
		return " from the config relay of " + origin
	case targetSource:
		return " from the target itself"
	}
	return ""
}

// rejected handles a 401 to a query sealed with stale: it returns the
// configs to retry the query with, or the error that ends it.
func (m *configs) rejected(ctx context.Context, t *target, stale *configSet, pi int) (*configSet, error) {
	switch {
	case stale.static():
		return nil, fmt.Errorf("static configs rejected by the target: %w", odoh.ErrKeyMismatch)
	case m.background:
		// A direct fetch now would be followed at once by this query's
		// retry: fetch in the background instead, and retry only with
		// configs that are already newer than the rejected ones.
		if s := m.refetchLater(t, stale); s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("configs to be fetched again in the background: %w", odoh.ErrKeyMismatch)
	}
	return m.refresh(ctx, t, stale, pi)
}

// fetch runs one shared fetch under its own timeout, so that the caller
// that started it cannot cancel it for the others (Close does), and
// records its outcome.
func (m *configs) fetch(t *target, pi int) (*configSet, error) {
	ctx, cancel := context.WithTimeout(m.bg, m.c.timeout)
	defer cancel()
	s, err := m.source.fetch(ctx, t, pi)
	if err == nil {
		s, err = m.c.pinned(t, s)
	}
	m.record(t, s, err, pi)
	return s, err
}

// pinned applies t's key pins to a fetched set.
func (c *Client) pinned(t *target, s *configSet) (*configSet, error) {
	all, err := c.pins.filter(t.url.Hostname(), s.all)
	if err != nil {
		return nil, err
	}
	if len(all) == len(s.all) {
		return s, nil
	}
	out := *s
	out.all, out.cfg = all, all[0]
	return &out, nil
}

// record keeps the outcome of a fetch (s on success, err on failure): a
// failure is remembered for a backoff and logged at warn level once, not
// at every query; in background mode the next fetch is scheduled.
func (m *configs) record(t *target, s *configSet, err error, pi int) {
	t.cfg.mu.Lock()
	defer t.cfg.mu.Unlock()
	var next time.Duration // when a background fetch follows
	if err == nil {
		if t.cfg.fails > 0 {
			m.c.log.Info("odoh configs fetched again", "target", t.str)
		}
		t.cfg.cur.Store(s)
		t.cfg.fails, t.cfg.failed, t.cfg.refetching = 0, nil, false
		next = m.refreshIn(s.maxAge)
	} else {
		t.cfg.fails++
		next = failureDelay(t.cfg.fails)
		t.cfg.failed = &fetchFailure{err: err, until: time.Now().Add(next), proxy: m.via(pi)}
		lvl := slog.LevelDebug
		if t.cfg.fails == 1 {
			lvl = slog.LevelWarn
		}
		m.c.log.Log(m.bg, lvl, "fetching odoh configs failed; queries to this target fail until a fetch succeeds",
			"target", t.str, "retry_after", next.Round(time.Second), "err", err)
	}
	if m.background && m.bg.Err() == nil {
		m.scheduleLocked(t, next)
	}
}

// via is the proxy that a fetch for a query through proxy pi goes
// through: pi for the tunnel and the relay, none for the others.
func (m *configs) via(pi int) int {
	if m.usesProxy {
		return pi
	}
	return -1
}

// scheduleLocked sets t's next background fetch d from now. t.cfg.mu is
// held.
func (m *configs) scheduleLocked(t *target, d time.Duration) {
	if t.cfg.timer != nil {
		t.cfg.timer.Stop()
	}
	t.cfg.timer = time.AfterFunc(d, func() {
		// The fetch that set this timer may still be in its flight (a
		// short delay): a new fetch, not a share of that one.
		m.flights.Forget(t.str)
		_, _ = m.refresh(m.bg, t, t.cfg.cur.Load(), -1)
	})
}

// refetchLater handles a 401 to a query sealed with stale in background
// mode: it returns newer configs if a fetch already brought them, and
// otherwise schedules a background fetch after a random delay (once for
// all the queries that see the 401) and returns nil.
func (m *configs) refetchLater(t *target, stale *configSet) *configSet {
	t.cfg.mu.Lock()
	defer t.cfg.mu.Unlock()
	if cur := t.cfg.cur.Load(); cur != stale && cur.fresh(time.Now()) {
		return cur
	}
	if t.cfg.refetching || m.bg.Err() != nil {
		return nil
	}
	t.cfg.refetching = true
	t.cfg.failed = nil // the refetch must not wait for an old backoff
	m.scheduleLocked(t, m.refetchIn())
	m.c.log.Info("odoh target rejected its configs; fetching them again in the background", "target", t.str)
	return nil
}

// close stops the background fetches.
func (m *configs) close(targets []*target) {
	m.cancel()
	for _, t := range targets {
		t.cfg.mu.Lock()
		if t.cfg.timer != nil {
			t.cfg.timer.Stop()
		}
		t.cfg.mu.Unlock()
	}
}

// refreshDelay is when configs of lifetime ttl are fetched again in the
// background: at a random point between 80% and 90% of ttl, so that the
// fetch neither follows a query nor falls at the same moment for every
// client.
func refreshDelay(ttl time.Duration) time.Duration {
	return ttl - ttl/10 - rand.N(ttl/10+1)
}

// refetchDelay is the random delay of a fetch after a 401.
func refetchDelay() time.Duration {
	return RefetchDelay/10 + rand.N(RefetchDelay-RefetchDelay/10)
}

// failureDelay is the backoff after n fetches failed in a row: from
// MinConfigTTL, doubling up to 5 minutes, jittered by up to half.
func failureDelay(n int) time.Duration {
	d := min(MinConfigTTL<<min(n-1, 5), 5*time.Minute)
	return d/2 + rand.N(d/2)
}

// TargetConfigs describes the configs a target publishes.
type TargetConfigs struct {
	// Target is the target URL, or the DoH URL of an OHTTP target.
	Target string
	// Configs are the usable configs in the target's order of preference
	// (only the pinned ones, with key pins).
	Configs []*odoh.Config
	// OHTTPKeys are an OHTTP target's usable key configurations, the one
	// queries are encapsulated to first, then the others in the gateway's
	// order. Configs is then empty.
	OHTTPKeys []*ohttp.KeyConfig
	// MaxAge is the (clamped) lifetime the client caches them for; zero
	// for static configs.
	MaxAge time.Duration
}

// Configs fetches the configs of every target now, by the client's
// ConfigSource (bypassing the cache, which it then updates), and the key
// configurations of every OHTTP target as OHTTPTarget says, as the CLI's
// "odoh configs" prints them.
func (c *Client) Configs(ctx context.Context) ([]TargetConfigs, error) {
	var out []TargetConfigs
	for i, t := range c.targets {
		pi := -1
		if len(c.proxies) > 0 {
			pi = i % len(c.proxies)
		}
		s, err := c.configs.source.fetch(ctx, t, pi)
		if err == nil {
			s, err = c.pinned(t, s)
		}
		if err != nil {
			return out, err
		}
		c.configs.record(t, s, nil, pi)
		out = append(out, TargetConfigs{Target: t.str, Configs: s.all, MaxAge: s.maxAge})
	}
	for _, t := range c.ohttp {
		k, err := c.fetchOHTTPKeys(ctx, t)
		c.recordOHTTP(t, k, err)
		if err != nil {
			return out, err
		}
		keys := []*ohttp.KeyConfig{k.cfg}
		for _, x := range k.all {
			if !x.Equal(k.cfg) {
				keys = append(keys, x)
			}
		}
		out = append(out, TargetConfigs{Target: t.str, OHTTPKeys: keys, MaxAge: k.maxAge})
	}
	return out, nil
}

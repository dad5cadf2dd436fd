package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
)

// config returns the target's current config, fetching it when missing or
// expired. The hot path is one atomic load.
func (c *Client) config(ctx context.Context, t *target, pi int) (*configEntry, error) {
	if e := t.cfg.Load(); e != nil && (e.static || time.Now().Before(e.expires)) {
		return e, nil
	}
	return c.refresh(ctx, t, nil, pi)
}

// refresh fetches the target's configs unless someone already replaced
// stale with a fresh entry. Concurrent callers share one fetch, so a key
// rotation seen by many queries at once costs exactly one fetch. stale is
// nil when the entry is merely missing or expired.
func (c *Client) refresh(ctx context.Context, t *target, stale *configEntry, pi int) (*configEntry, error) {
	t.mu.Lock()
	cur := t.cfg.Load()
	if cur != nil && cur.static {
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: static config rejected by the target", ErrKeyMismatch)
	}
	if cur != nil && cur != stale && time.Now().Before(cur.expires) {
		t.mu.Unlock()
		return cur, nil
	}
	call := t.fetching
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		t.fetching = call
		go c.fetch(t, call, pi)
	}
	t.mu.Unlock()
	select {
	case <-call.done:
		return call.entry, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for configs: %w", ErrConfig, ctx.Err())
	}
}

// fetch runs one shared fetch under its own timeout, so that the caller
// that started it cannot cancel it for the others (Close does).
func (c *Client) fetch(t *target, call *fetchCall, pi int) {
	ctx, cancel := context.WithTimeout(c.bg, c.timeout)
	defer cancel()
	e, err := c.fetchConfigs(ctx, t, pi)
	t.mu.Lock()
	c.storeLocked(t, e, err)
	t.fetching = nil
	t.mu.Unlock()
	call.entry, call.err = e, err
	close(call.done)
	if err != nil {
		c.log.Warn("fetching odoh configs failed", "target", t.str, "err", err)
	}
}

// storeLocked records the outcome of a fetch (e on success, err on
// failure) and, in background mode, schedules the next fetch: before the
// new configs expire, or after a backoff. t.mu is held.
func (c *Client) storeLocked(t *target, e *configEntry, err error) {
	if err == nil {
		t.cfg.Store(e)
		t.fails, t.refetch = 0, false
	}
	if !c.background || c.bg.Err() != nil {
		return
	}
	var d time.Duration
	if err == nil {
		d = c.refreshIn(e.maxAge)
	} else {
		t.fails++
		d = failureDelay(t.fails)
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(d, func() { c.backgroundFetch(t) })
}

// backgroundFetch fetches t's configs off the query path. Its outcome is
// recorded by fetch, which schedules the next one.
func (c *Client) backgroundFetch(t *target) {
	_, _ = c.refresh(c.bg, t, t.cfg.Load(), -1)
}

// refetchLater handles a 401 to a query sealed with stale in background
// mode: it returns newer configs if a fetch already brought them, and
// otherwise schedules a background fetch after a random delay (once for
// all the queries that see the 401) and returns nil.
func (c *Client) refetchLater(t *target, stale *configEntry) *configEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.cfg.Load(); cur != stale && time.Now().Before(cur.expires) {
		return cur
	}
	if t.refetch || c.bg.Err() != nil {
		return nil
	}
	t.refetch = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(c.refetchIn(), func() { c.backgroundFetch(t) })
	c.log.Info("odoh target rejected its configs; fetching them again in the background", "target", t.str)
	return nil
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

// failureDelay backs off after n background fetches failed in a row:
// from MinConfigTTL, doubling up to 5 minutes, jittered by up to half.
func failureDelay(n int) time.Duration {
	d := min(MinConfigTTL<<min(n-1, 5), 5*time.Minute)
	return d/2 + rand.N(d/2)
}

func (c *Client) configsURL(t *target, pi int) string {
	if c.source == ConfigViaProxy && len(c.proxies) > 0 {
		if pi < 0 {
			pi = 0
		}
		return c.proxies[pi].tmpl.Origin() + odoh.ConfigsPath + "?" + url.Values{"targethost": {t.url.Host}}.Encode()
	}
	u := url.URL{Scheme: "https", Host: t.url.Host, Path: odoh.ConfigsPath}
	return u.String()
}

func (c *Client) fetchConfigs(ctx context.Context, t *target, pi int) (*configEntry, error) {
	u := c.configsURL(t, pi)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header = http.Header{"User-Agent": hdrUA}
	relay := c.source == ConfigViaProxy
	resp, err := c.hc.Do(req)
	if err != nil {
		if relay {
			err = &relayError{err}
		}
		return nil, fmt.Errorf("%w: fetching %s: %w", ErrConfig, redactURL(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		he := &HTTPError{URL: redactURL(u), StatusCode: resp.StatusCode, ProxyStatus: resp.Header.Get("Proxy-Status")}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			he.Err = ErrRedirect
		}
		if relay {
			hint := ""
			if he.ProxyStatus == "" && (he.StatusCode == http.StatusNotFound || he.StatusCode == http.StatusMethodNotAllowed) {
				hint = " (the proxy may have no config relay: use configs from the target, which shows it your address, or static configs)"
			}
			return nil, fmt.Errorf("%w: %w%s", ErrConfig, &relayError{he}, hint)
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, he)
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, odoh.MaxConfigsSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrConfig, redactURL(u), err)
	}
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing configs from %s: %w", ErrConfig, redactURL(u), err)
	}
	ttl := maxAge(resp.Header["Cache-Control"])
	return &configEntry{cfg: cfgs[0], all: cfgs, expires: time.Now().Add(ttl), maxAge: ttl}, nil
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

// TargetConfigs describes the configs a target publishes.
type TargetConfigs struct {
	// Target is the target URL.
	Target string
	// Configs are the usable configs in the target's order of preference.
	Configs []*odoh.Config
	// MaxAge is the (clamped) lifetime the client caches them for.
	MaxAge time.Duration
}

// Configs fetches the configs of every target now (bypassing the cache,
// which it then updates), as the CLI's "odoh configs" prints them.
func (c *Client) Configs(ctx context.Context) ([]TargetConfigs, error) {
	var out []TargetConfigs
	for i, t := range c.targets {
		if e := t.cfg.Load(); e != nil && e.static {
			out = append(out, TargetConfigs{Target: t.str, Configs: e.all})
			continue
		}
		pi := -1
		if len(c.proxies) > 0 {
			pi = i % len(c.proxies)
		}
		e, err := c.fetchConfigs(ctx, t, pi)
		if err != nil {
			return out, err
		}
		t.mu.Lock()
		c.storeLocked(t, e, nil)
		t.mu.Unlock()
		out = append(out, TargetConfigs{Target: t.str, Configs: e.all, MaxAge: e.maxAge})
	}
	return out, nil
}

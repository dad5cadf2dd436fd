package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
// that started it cannot cancel it for the others.
func (c *Client) fetch(t *target, call *fetchCall, pi int) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	e, err := c.fetchConfigs(ctx, t, pi)
	t.mu.Lock()
	if err == nil {
		t.cfg.Store(e)
	}
	t.fetching = nil
	t.mu.Unlock()
	call.entry, call.err = e, err
	close(call.done)
	if err != nil {
		c.log.Warn("fetching odoh configs failed", "target", t.str, "err", err)
	}
}

func (c *Client) configsURL(t *target, pi int) string {
	if c.opts.ConfigSource == ConfigViaProxy && len(c.proxies) > 0 {
		if pi < 0 {
			pi = 0
		}
		return c.proxies[pi].tmpl.Origin() + ConfigsPath + "?" + url.Values{"targethost": {t.url.Host}}.Encode()
	}
	u := url.URL{Scheme: "https", Host: t.url.Host, Path: ConfigsPath}
	return u.String()
}

func (c *Client) fetchConfigs(ctx context.Context, t *target, pi int) (*configEntry, error) {
	u := c.configsURL(t, pi)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header = http.Header{"User-Agent": hdrUA}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching %s: %w", ErrConfig, redactURL(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		he := &HTTPError{URL: redactURL(u), StatusCode: resp.StatusCode, ProxyStatus: resp.Header.Get("Proxy-Status")}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			he.Err = ErrRedirect
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, he)
	}
	body, err := readBody(resp, MaxConfigsSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrConfig, redactURL(u), err)
	}
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil {
		return nil, fmt.Errorf("%w: parsing configs from %s: %w", ErrConfig, redactURL(u), err)
	}
	ttl := maxAge(resp.Header.Get("Cache-Control"))
	return &configEntry{cfg: cfgs[0], all: cfgs, expires: time.Now().Add(ttl), maxAge: ttl}, nil
}

// maxAge returns the clamped max-age of a Cache-Control header, or
// DefaultConfigTTL without one.
func maxAge(cc string) time.Duration {
	for d := range strings.SplitSeq(cc, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(k, "max-age") {
			continue
		}
		n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
		if err != nil || n < 0 {
			break
		}
		ttl := time.Duration(min(n, int64(MaxConfigTTL/time.Second))) * time.Second
		return max(ttl, MinConfigTTL)
	}
	return DefaultConfigTTL
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
		t.cfg.Store(e)
		out = append(out, TargetConfigs{Target: t.str, Configs: e.all, MaxAge: e.maxAge})
	}
	return out, nil
}

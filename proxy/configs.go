package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
)

// configCache holds targets' ObliviousDoHConfigs (or, in the cache of the
// OHTTP relays, gateways' key configurations), fetched once for all
// clients. Concurrent misses for one resource share a single fetch;
// failures are not cached. At most maxFetches fetches run at once, and the
// cache never holds more than maxSize entries: a miss that finds either
// full is refused (errConfigsBusy) rather than queued.
type configCache struct {
	h              *Handler
	minAge, maxAge time.Duration
	maxSize        int
	maxFetches     int
	now            func() time.Time // the cache's clock; tests set their own
	// What is cached: the body limit, the check of a body, and the Accept
	// header of the fetch (nil: none).
	maxBody      int64
	check        func(body []byte) *failure
	acceptHeader []string

	mu       sync.Mutex
	m        map[string]*configEntry // by canonical target key
	fetching int                     // fetches running
}

// newConfigCache is an empty cache with cfg's limits; the caller says what
// it holds (maxBody, check, accept).
func newConfigCache(h *Handler, cfg Config) *configCache {
	return &configCache{
		h:          h,
		minAge:     orInt(cfg.ConfigsMinAge, DefaultConfigsMinAge),
		maxAge:     orInt(cfg.ConfigsMaxAge, DefaultConfigsMaxAge),
		maxSize:    orInt(cfg.MaxCachedConfigs, DefaultMaxCachedConfigs),
		maxFetches: orInt(cfg.MaxConfigsFetches, DefaultMaxConfigsFetches),
		now:        time.Now,
		m:          make(map[string]*configEntry),
	}
}

type configEntry struct {
	done    chan struct{} // closed when the fetch finished
	body    []byte        // a well-framed ObliviousDoHConfigs list
	fetched time.Time
	expires time.Time
	err     *failure
}

// serveConfigs answers GET /.well-known/odohconfigs?targethost=HOST.
func (h *Handler) serveConfigs(w http.ResponseWriter, r *http.Request) {
	if err := h.relayConfigs(w, r); err != nil {
		h.answerError(w, r, err)
	}
}

func (h *Handler) relayConfigs(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethodNotGet
	}
	client := clientKey(r.RemoteAddr)
	if err := h.admit(client); err != nil {
		return err
	}
	defer h.leave(client)
	t, _, err := h.route(r.URL.RawQuery, false)
	if err != nil {
		return err
	}
	e, err := h.configs.get(r.Context(), t, odoh.ConfigsPath)
	if err != nil {
		return atTarget(t, getError(r, err))
	}
	// The body is checked to be configs and always typed as opaque bytes:
	// the target's own media type (text/html, say) would let it serve
	// active content from the proxy's origin.
	h.configs.write(w, r, e, octetStream)
	h.count(resConfigs)
	return nil
}

// getError is the stage error of a failed get: the fetch's failure or
// busy (503), or the client's end.
func getError(r *http.Request, err error) error {
	if f, ok := errors.AsType[*failure](err); ok {
		return f
	}
	if clientGone(r) {
		return errClientGone
	}
	// The client's context ended otherwise (a deadline of its own).
	return errClientDeadline
}

// write answers with a cached entry, typed contentType, for the time it
// has left.
func (c *configCache) write(w http.ResponseWriter, r *http.Request, e *configEntry, contentType []string) {
	hdr := w.Header()
	hdr["Content-Type"] = contentType
	hdr["X-Content-Type-Options"] = nosniff
	hdr["Content-Length"] = []string{strconv.Itoa(len(e.body))}
	hdr["Cache-Control"] = []string{odoh.CacheControlMaxAge(e.expires.Sub(c.now()))}
	hdr["Proxy-Status"] = c.h.status.receivedStatus(http.StatusOK)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(e.body)
	}
}

// get returns a fresh entry for t's resource at path, fetching it if
// needed.
func (c *configCache) get(ctx context.Context, t *target, path string) (*configEntry, error) {
	now := c.now()
	key := t.key + path
	c.mu.Lock()
	e := c.m[key]
	if e != nil {
		select {
		case <-e.done:
			if now.Before(e.expires) {
				c.mu.Unlock()
				return e, nil
			}
			e = nil // expired: fetch again
		default: // a fetch is running: wait for it
		}
	}
	if e == nil {
		if c.fetching >= c.maxFetches {
			c.mu.Unlock()
			return nil, errConfigsBusy
		}
		c.evictLocked(now)
		if _, ok := c.m[key]; !ok && len(c.m) >= c.maxSize {
			// Every entry is still being fetched and none can go.
			c.mu.Unlock()
			return nil, errConfigsBusy
		}
		e = &configEntry{done: make(chan struct{})}
		c.m[key] = e
		c.fetching++
		// The fetch outlives the client that started it, since others
		// may be waiting for it; it has its own deadline.
		go c.fetch(t, path, e)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// evictLocked keeps the cache under maxSize: expired entries go first,
// then an arbitrary finished one.
func (c *configCache) evictLocked(now time.Time) {
	if len(c.m) < c.maxSize {
		return
	}
	var victim string
	for k, e := range c.m {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.m, k)
			} else if victim == "" {
				victim = k
			}
		default:
		}
	}
	if len(c.m) >= c.maxSize && victim != "" {
		delete(c.m, victim)
	}
}

// markStale drops t's cached configs (at path) after the target refused a
// query's key (401; for a gateway, the ohttp-key problem), so that the
// next request fetches the new ones instead of serving the old until they
// expire. Entries younger than minAge stay: clients cannot make the proxy
// fetch a target's configs more often than that.
func (c *configCache) markStale(t *target, path string) {
	now := c.now()
	key := t.key + path
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		return
	}
	select {
	case <-e.done:
	default:
		return // being fetched right now
	}
	if e.err == nil && now.Sub(e.fetched) >= c.minAge {
		delete(c.m, key)
	}
}

// purge forgets everything (after a policy change).
func (c *configCache) purge() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *configCache) fetch(t *target, path string, e *configEntry) {
	h := c.h
	defer close(e.done)
	defer func() {
		c.mu.Lock()
		c.fetching--
		if e.err != nil && c.m[t.key+path] == e {
			delete(c.m, t.key+path)
		}
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeoutCause(context.Background(), h.responseTimeout, errResponseDeadline)
	defer cancel()
	u := &url.URL{Scheme: "https", Host: t.urlHost, Path: path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err == nil {
		req.Header = http.Header{"User-Agent": h.upHeader["User-Agent"]}
		if c.acceptHeader != nil {
			req.Header["Accept"] = c.acceptHeader
		}
		var resp *http.Response
		resp, err = h.upstream.RoundTrip(req)
		if err == nil {
			e.err = c.accept(e, resp)
			if e.err == nil {
				e.body, err = httpbody.Read(resp.Body, nil, resp.ContentLength, c.maxBody)
				if errors.Is(err, httpbody.ErrTooLarge) {
					err = &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPResponseBodySize, err: err}
				}
			}
			resp.Body.Close()
		}
	}
	if err != nil {
		e.err = classify(ctx, err)
	}
	if e.err == nil {
		e.err = c.check(e.body)
	}
}

// accept checks the target's response to a configs fetch and sets the
// entry's lifetime and media type.
func (c *configCache) accept(e *configEntry, resp *http.Response) *failure {
	if resp.StatusCode != http.StatusOK {
		return &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPProtocolError, err: errors.New("configs status " + strconv.Itoa(resp.StatusCode))}
	}
	// The proxy is a shared cache of its targets' configs.
	age := c.minAge
	if a, ok := odoh.MaxAge(resp.Header["Cache-Control"], true); ok {
		age = min(max(a, c.minAge), c.maxAge)
	}
	e.fetched = c.now()
	e.expires = e.fetched.Add(age)
	return nil
}

// checkConfigs accepts a body that is a well-framed ObliviousDoHConfigs
// list. A list with no config this proxy's odoh package supports is still
// relayed: clients may support suites or versions it does not.
func checkConfigs(body []byte) *failure {
	_, err := odoh.ParseConfigs(body)
	if err == nil || errors.Is(err, odoh.ErrUnsupported) && !errors.Is(err, odoh.ErrMalformed) {
		return nil
	}
	return &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPProtocolError, err: fmt.Errorf("target configs: %w", err)}
}

package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// OHTTPTarget is a DNS over HTTPS resolver behind an Oblivious HTTP
// gateway (RFC 9458), reached through a relay: the three URLs Firefox takes
// for its network.trr.use_ohttp mode. The relay sees the client's address
// but not its queries; the gateway sees the queries but not the address.
//
// The gateway's key configuration must be the gateway's own and the same
// for every client (RFC 9458 §3, §7), the rules ODoH configs follow (see
// ConfigViaTunnel): when Keys is not at the gateway's origin, the client
// fetches the keys from the gateway itself (GET
// /.well-known/ohttp-gateway, RFC 9540 §6) in its own TLS session through
// the relay's CONNECT tunnel, which odoh-proxy offers, and also from Keys,
// the relay's copy shared by every client; it uses a key both hold, or
// the one it last found in both while a rotation is in progress, as for
// ODoH (ErrInconsistentConfigs otherwise). A relay without the tunnel gets ErrNoTunnel.
// Keys at the gateway's origin are fetched from there directly, which
// authenticates them but shows the gateway the client's address at each
// fetch: with a relay on another host, the client then keeps such fetches
// off the query path as ConfigFromTarget does (in the background, at a
// random point between 80% and 90% of the keys' max-age; after an
// ohttp-key problem the query fails with odoh.ErrKeyMismatch and the keys
// are fetched again after a random delay of up to RefetchDelay), so that
// no fetch from the client's address closely precedes a query. The first
// query still waits for the first fetch, unless Configs ran first.
type OHTTPTarget struct {
	// Relay is the Oblivious Relay Resource that Encapsulated Requests
	// are POSTed to (network.trr.ohttp.relay_uri), e.g. odoh-proxy's
	// https://relay.example/ohttp/dns.example.
	Relay string
	// Keys is the gateway's key configuration as application/ohttp-keys
	// (network.trr.ohttp.config_uri). Empty means the Relay URL, where
	// odoh-proxy serves its shared copy.
	Keys string
	// DoH is the DoH URL the inner request is for (network.trr.ohttp.uri),
	// e.g. https://dns.example/dns-query: its authority and path, not a
	// connection, reach the gateway's resolver, on the same host.
	DoH string
}

// ohttpTarget is a parsed OHTTPTarget with its key configuration cache.
type ohttpTarget struct {
	relay, keys string
	relayEP     *endpoint // the relay as a proxy: its CONNECT tunnel
	dohURL      *url.URL
	authority   string // of the DoH URL, as the inner request names it
	path        string
	str         string // the DoH URL, for results and errors
	// keysAtGateway: Keys is at the gateway's origin, so fetching it
	// there authenticates it (no tunnel).
	keysAtGateway bool
	// background: keysAtGateway with a relay on another host, so key
	// fetches, which show the gateway the client's address, are kept off
	// the query path (see OHTTPTarget).
	background bool

	cur       atomic.Pointer[ohttpKeys]
	agreed    atomic.Pointer[ohttp.KeyConfig] // last in both the tunnel's and the relay's lists
	downUntil atomic.Int64

	mu     sync.Mutex
	failed *fetchFailure // the last failed fetch, answered until it expires
	fails  int
	timer  *time.Timer // the next background fetch
	// refetching: a background fetch after an ohttp-key problem is
	// scheduled.
	refetching bool
}

type ohttpKeys struct {
	cfg     *ohttp.KeyConfig
	all     []*ohttp.KeyConfig
	expires time.Time
	maxAge  time.Duration
}

// parseOHTTPTarget checks the three URLs: https, no user info, no
// fragment; the DoH URL needs a path and no query.
func parseOHTTPTarget(o OHTTPTarget) (*ohttpTarget, error) {
	if o.Keys == "" {
		o.Keys = o.Relay
	}
	var us [3]*url.URL
	for i, s := range []string{o.Relay, o.Keys, o.DoH} {
		name := [...]string{"relay", "keys", "DoH"}[i]
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return nil, fmt.Errorf("OHTTP %s URL %q: %w", name, s, err)
		case u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "":
			return nil, fmt.Errorf("OHTTP %s URL %q: want https://HOST[:PORT]/PATH, without user info or fragment", name, s)
		}
		us[i] = u
	}
	doh := us[2]
	if doh.Path == "" || doh.RawQuery != "" {
		return nil, fmt.Errorf("OHTTP DoH URL %q: want a path and no query, such as https://%s%s", o.DoH, doh.Host, odoh.QueryPath)
	}
	relayEP, err := ParseProxyTemplate(us[0].String())
	if err != nil {
		return nil, fmt.Errorf("OHTTP relay URL: %w", err)
	}
	return &ohttpTarget{
		relay:         us[0].String(),
		keys:          us[1].String(),
		relayEP:       &endpoint{tmpl: relayEP},
		dohURL:        doh,
		authority:     strings.ToLower(doh.Host),
		path:          doh.EscapedPath(),
		str:           doh.String(),
		keysAtGateway: strings.EqualFold(us[1].Host, doh.Host),
		background:    strings.EqualFold(us[1].Host, doh.Host) && !strings.EqualFold(us[0].Hostname(), doh.Hostname()),
	}, nil
}

// gatewayAuthority is the gateway's host:port, as CONNECT names it.
func (t *ohttpTarget) gatewayAuthority() string {
	if t.dohURL.Port() != "" {
		return t.dohURL.Host
	}
	return net.JoinHostPort(t.dohURL.Hostname(), "443")
}

// ohttpKeys returns the target's key configuration, fetching it when
// missing or expired, or when stale (a configuration the gateway refused,
// RFC 9458 §5.3) is still the current one. A failed fetch is answered
// again until its backoff ends.
func (c *Client) ohttpKeys(ctx context.Context, t *ohttpTarget, stale *ohttpKeys) (*ohttpKeys, error) {
	now := time.Now()
	if k := t.cur.Load(); k != nil && k != stale && now.Before(k.expires) {
		return k, nil
	}
	t.mu.Lock()
	failed := t.failed
	t.mu.Unlock()
	if failed != nil && now.Before(failed.until) {
		return nil, failed.err
	}
	return c.fetchOHTTPShared(ctx, t, stale)
}

// fetchOHTTPShared fetches the key configuration unless someone already
// replaced stale with a fresh one. Concurrent callers share one fetch,
// which the query that started it cannot cancel for the others (Close
// does).
func (c *Client) fetchOHTTPShared(ctx context.Context, t *ohttpTarget, stale *ohttpKeys) (*ohttpKeys, error) {
	ch := c.configs.flights.DoChan(t.flightKey(), func() (any, error) {
		if k := t.cur.Load(); k != nil && k != stale && time.Now().Before(k.expires) {
			return k, nil
		}
		ctx, cancel := context.WithTimeout(c.configs.bg, c.timeout)
		defer cancel()
		k, err := c.fetchOHTTPKeys(ctx, t)
		c.recordOHTTP(t, k, err)
		if err != nil {
			return nil, err
		}
		return k, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if cause := ended(ctx); cause != nil {
				return nil, fmt.Errorf("%w: waiting for OHTTP keys: %w", ErrConfig, cause)
			}
			return nil, r.Err
		}
		return r.Val.(*ohttpKeys), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for OHTTP keys: %w", ErrConfig, ctx.Err())
	}
}

// recordOHTTP keeps the outcome of a fetch (k on success, err on
// failure), as configs.record does for ODoH: a failure is remembered for
// a backoff and logged once; in background mode the next fetch is
// scheduled.
func (c *Client) recordOHTTP(t *ohttpTarget, k *ohttpKeys, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next time.Duration
	if err != nil {
		t.fails++
		next = failureDelay(t.fails)
		t.failed = &fetchFailure{err: err, until: time.Now().Add(next), proxy: -1}
		if t.fails == 1 {
			c.log.Warn("fetching OHTTP keys failed; queries to this resolver fail until a fetch succeeds", "doh", t.str, "err", err)
		}
	} else {
		if t.fails > 0 {
			c.log.Info("OHTTP keys fetched again", "doh", t.str)
		}
		t.cur.Store(k)
		t.fails, t.failed, t.refetching = 0, nil, false
		next = c.configs.refreshIn(k.maxAge)
	}
	c.scheduleOHTTPLocked(t, next)
}

// scheduleOHTTPLocked sets t's next background fetch d from now, in
// background mode. t.mu is held.
func (c *Client) scheduleOHTTPLocked(t *ohttpTarget, d time.Duration) {
	if !t.background || c.configs.bg.Err() != nil {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(d, func() {
		// The fetch that set this timer may still be in its flight (a
		// short delay): a new fetch, not a share of that one.
		c.configs.flights.Forget(t.flightKey())
		_, _ = c.fetchOHTTPShared(c.configs.bg, t, t.cur.Load())
	})
}

// flightKey names t's key fetches among the client's shared flights.
func (t *ohttpTarget) flightKey() string { return "ohttp " + t.relay + " " + t.str }

// refetchOHTTPLater handles an ohttp-key problem to a query encapsulated
// to stale in background mode: it returns newer keys if a fetch already
// brought them, and otherwise schedules a background fetch after a random
// delay (once for all the queries that see the problem) and returns nil.
func (c *Client) refetchOHTTPLater(t *ohttpTarget, stale *ohttpKeys) *ohttpKeys {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.cur.Load(); cur != nil && cur != stale && time.Now().Before(cur.expires) {
		return cur
	}
	if t.refetching || c.configs.bg.Err() != nil {
		return nil
	}
	t.refetching = true
	t.failed = nil // the refetch must not wait for an old backoff
	c.scheduleOHTTPLocked(t, c.configs.refetchIn())
	c.log.Info("the OHTTP gateway refused its keys; fetching them again in the background", "doh", t.str)
	return nil
}

// closeOHTTP stops the background key fetches (the caller cancels
// c.configs.bg).
func (c *Client) closeOHTTP() {
	for _, t := range c.ohttp {
		t.mu.Lock()
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
	}
}

// fetchOHTTPKeys obtains the key configuration as OHTTPTarget describes.
func (c *Client) fetchOHTTPKeys(ctx context.Context, t *ohttpTarget) (*ohttpKeys, error) {
	if t.keysAtGateway {
		return getOHTTPKeys(ctx, c.hc.Transport, t.keys, "")
	}
	tc, err := c.tunnelTLS(ctx, t.relayEP, t.gatewayAuthority(), t.dohURL.Hostname())
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "https", Host: t.dohURL.Host, Path: ohttp.WellKnownGatewayPath}
	tun, err := getOHTTPKeys(ctx, &oneShot{conn: tc}, u.String(), " through the tunnel of "+t.relayEP.tmpl.Origin())
	tc.Close()
	if err != nil {
		return nil, orCtx(ctx, err)
	}
	rel, err := getOHTTPKeys(ctx, c.hc.Transport, t.keys, " (the relay's shared copy)")
	if errors.Is(err, odoh.ErrMalformed) || errors.Is(err, odoh.ErrUnsupported) {
		// It answered, with something else than the gateway's keys.
		return nil, fmt.Errorf("%w: %w: %w", ErrConfig, ErrInconsistentConfigs, err)
	}
	var relAll, prev []*ohttp.KeyConfig
	if rel != nil {
		relAll = rel.all
	}
	if p := t.agreed.Load(); p != nil {
		prev = []*ohttp.KeyConfig{p}
	}
	k, agreed, ok := consistentKey(tun.all, relAll, prev)
	out := *tun
	switch {
	case agreed:
		t.agreed.Store(k)
		out.cfg = k
		return &out, nil
	case ok:
		ttl := min(tun.maxAge, ConsistencyWindow)
		if rel != nil {
			ttl = min(ttl, rel.maxAge)
		}
		out.cfg, out.all, out.maxAge, out.expires = k, []*ohttp.KeyConfig{k}, ttl, time.Now().Add(ttl)
		return &out, nil
	case err != nil:
		return nil, fmt.Errorf("%w: the relay's shared copy of the OHTTP keys did not answer, and keys of %s that it did not confirm are not used: %w",
			ErrConfig, t.str, err)
	}
	return nil, fmt.Errorf("%w: the gateway of %s published OHTTP key %d through the tunnel, the relay holds key %d for every client: %w",
		ErrConfig, t.str, tun.cfg.KeyID(), rel.cfg.KeyID(), ErrInconsistentConfigs)
}

// getOHTTPKeys GETs an application/ohttp-keys body at u over rt, strictly
// parsed (a list with any framing error is discarded, RFC 9458 §3.2) and
// cached for its max-age, clamped as configs are; via names the path in
// errors, as for getConfigs.
func getOHTTPKeys(ctx context.Context, rt http.RoundTripper, u, via string) (*ohttpKeys, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	req.Header = http.Header{"Accept": hdrOHTTPKeys, "User-Agent": hdrUA}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching OHTTP keys from %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w%s: %w", ErrConfig, via, newHTTPError(u, resp))
	}
	if !odoh.HasContentType(resp.Header["Content-Type"], ohttp.KeysContentType) {
		return nil, fmt.Errorf("%w: %s%s sent %q, not %s", ErrConfig, redactURL(u), via, resp.Header.Get("Content-Type"), ohttp.KeysContentType)
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, maxOHTTPKeysSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading OHTTP keys from %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	all, err := ohttp.ParseKeyConfigs(body)
	if err != nil {
		return nil, fmt.Errorf("%w: OHTTP keys from %s%s: %w", ErrConfig, redactURL(u), via, err)
	}
	ttl := maxAge(resp.Header["Cache-Control"])
	return &ohttpKeys{cfg: all[0], all: all, expires: time.Now().Add(ttl), maxAge: ttl}, nil
}

// maxOHTTPKeysSize bounds an application/ohttp-keys body: a gateway
// publishes one or a few configurations of about 40 bytes each.
const maxOHTTPKeysSize = 1 << 16

var (
	hdrOHTTPReq  = []string{ohttp.RequestContentType}
	hdrOHTTPKeys = []string{ohttp.KeysContentType}
)

// tryOHTTP sends q to an OHTTP target, fetching its keys once more and
// retrying once if the gateway refuses them (RFC 9458 §5.3).
func (c *Client) tryOHTTP(ctx context.Context, t *ohttpTarget, q []byte) ([]byte, error) {
	k, err := c.ohttpKeys(ctx, t, nil)
	if err != nil {
		return nil, err
	}
	ans, err := c.postOHTTP(ctx, t, k.cfg, q)
	if !errors.Is(err, errKeyProblem) {
		return ans, err
	}
	if t.background {
		// A direct fetch now would be followed at once by this query's
		// retry: fetch in the background instead, and retry only with
		// keys that are already newer than the refused ones.
		next := c.refetchOHTTPLater(t, k)
		if next == nil {
			if he, ok := errors.AsType[*HTTPError](err); ok {
				he.Err = fmt.Errorf("OHTTP keys to be fetched again in the background: %w", odoh.ErrKeyMismatch)
			}
			return nil, err
		}
		k = next
	} else if k, err = c.ohttpKeys(ctx, t, k); err != nil {
		return nil, err
	}
	ans, err = c.postOHTTP(ctx, t, k.cfg, q)
	if he, ok := errors.AsType[*HTTPError](err); ok && errors.Is(err, errKeyProblem) {
		he.Err = fmt.Errorf("after fetching the OHTTP keys again: %w", odoh.ErrKeyMismatch)
	}
	return ans, err
}

// errKeyProblem marks the gateway's "ohttp-key" problem (RFC 9458 §5.3),
// an HTTPError's Err until the retry gives up (then odoh.ErrKeyMismatch).
var errKeyProblem = errors.New("the gateway does not hold the key configuration used (ohttp-key problem)")

// firefoxHeader is the header section of the DoH request inside OHTTP:
// the fields Firefox's TRR sets on its channel (Accept, Cache-Control for
// POST, emptied Accept-Language and User-Agent) and the Content-Type of
// its body, so that a gateway cannot tell this client from Firefox by
// them. Shared, read-only.
var firefoxHeader = bhttp.Fields{
	{Name: "accept", Value: odoh.DoHContentType},
	{Name: "cache-control", Value: "no-store"},
	{Name: "accept-language", Value: ""},
	{Name: "user-agent", Value: ""},
	{Name: "content-type", Value: odoh.DoHContentType},
}

// postOHTTP encapsulates q in a DoH request as Firefox sends it, posts it
// to the relay and opens the answer.
func (c *Client) postOHTTP(ctx context.Context, t *ohttpTarget, cfg *ohttp.KeyConfig, q []byte) ([]byte, error) {
	inner := &bhttp.Request{
		Method: http.MethodPost, Scheme: "https", Authority: t.authority, Path: t.path,
		Header: firefoxHeader, Content: q,
	}
	plain, err := inner.Append(nil, bhttp.Encoding{Truncate: true})
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	if c.padding > 0 {
		if pad := (c.padding - len(plain)%c.padding) % c.padding; pad > 0 {
			plain = append(plain, make([]byte, pad)...)
		}
	}
	msg, cc, err := ohttp.EncapsulateRequest(cfg, plain)
	if err != nil {
		return nil, fmt.Errorf("encapsulating query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.relay, bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	// Exactly these headers (RFC 9458 §5: only what carries the request).
	req.Header = http.Header{"Content-Type": hdrOHTTPReq, "User-Agent": hdrUA}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting query to %s: %w", redactURL(t.relay), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		problem := isKeyProblem(resp)
		he := newHTTPError(t.relay, resp)
		if problem {
			he.Err = errKeyProblem
		}
		return nil, he
	}
	if !odoh.HasContentType(resp.Header["Content-Type"], ohttp.ResponseContentType) {
		return nil, fmt.Errorf("%w: content type %q", ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, ohttp.MaxDNSMessageSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrBadResponse, err)
	}
	res, err := cc.DecapsulateResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	r, err := bhttp.ParseResponse(res)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if r.Status != http.StatusOK {
		// The gateway's own answer, encapsulated: the target's fault.
		return nil, fmt.Errorf("%w: the gateway answered the DoH request with HTTP %d", ErrBadResponse, r.Status)
	}
	if !odoh.HasContentType(r.Header.Values("content-type"), odoh.DoHContentType) {
		return nil, fmt.Errorf("%w: DoH answer of type %q", ErrBadResponse, r.Header.Get("content-type"))
	}
	return r.Content, nil
}

// isKeyProblem reports whether an unencapsulated response is the gateway's
// ohttp-key problem (ohttp.IsKeyProblem), reading at most 4 KiB of it.
func isKeyProblem(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest {
		return false
	}
	b, err := httpbody.Read(resp.Body, nil, resp.ContentLength, 4096)
	return err == nil && ohttp.IsKeyProblem(resp.StatusCode, resp.Header["Content-Type"], b)
}

// addOHTTP parses Config.OHTTP.
func (c *Client) addOHTTP(cfg Config) error {
	for _, o := range cfg.OHTTP {
		t, err := parseOHTTPTarget(o)
		if err != nil {
			return err
		}
		c.ohttp = append(c.ohttp, t)
	}
	return nil
}

// checkOHTTPOperators refuses a relay and a gateway of one operator: one
// would see both who asks and what (RFC 9458 §6).
func (c *Client) checkOHTTPOperators() error {
	for _, t := range c.ohttp {
		rd, gd := registrableDomain(hostOnly(t.relayEP.tmpl.Host())), registrableDomain(t.dohURL.Hostname())
		if rd == gd {
			return fmt.Errorf("OHTTP relay %q, gateway %q (%s): %w", t.relay, t.str, rd, ErrSameOperator)
		}
	}
	return nil
}

// ohttpAt returns the OHTTP target of index ti of pick's index space, in
// which they follow the ODoH targets, or nil for an ODoH target.
func (c *Client) ohttpAt(ti int) *ohttpTarget {
	if ti < len(c.targets) {
		return nil
	}
	return c.ohttp[ti-len(c.targets)]
}

// targetName and targetDown are a target's name and health, of either kind.
func (c *Client) targetName(ti int) string {
	if t := c.ohttpAt(ti); t != nil {
		return t.str
	}
	return c.targets[ti].str
}

func (c *Client) targetDown(ti int) *atomic.Int64 {
	if t := c.ohttpAt(ti); t != nil {
		return &t.downUntil
	}
	return &c.targets[ti].downUntil
}

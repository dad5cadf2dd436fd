package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/publicsuffix"
)

// Defaults for the zero values of Options.
const (
	// DefaultTimeout bounds one Exchange, failover and config fetches
	// included.
	DefaultTimeout = 5 * time.Second
	// DefaultDialTimeout bounds connecting to a proxy or target (TCP+TLS
	// or the QUIC handshake), so that a dead one is passed over quickly.
	DefaultDialTimeout = 2 * time.Second
	// DefaultCooldown is how long a proxy or target that failed is avoided
	// while others are healthy.
	DefaultCooldown = 10 * time.Second
	// DefaultMaxAttempts bounds the proxies (and targets) one query tries.
	DefaultMaxAttempts = 3
	// DefaultConfigTTL is the config lifetime when the target sends no
	// Cache-Control max-age.
	DefaultConfigTTL = time.Hour
	// RefetchDelay bounds the random delay after which a client in
	// ConfigFromTarget mode fetches a target's configs again once the
	// target answered 401: the fetch leaves the query path, so that the
	// target cannot tie it to the query that saw the 401.
	RefetchDelay = 5 * time.Second
	// MinConfigTTL and MaxConfigTTL clamp a target's max-age, so that a
	// max-age of 0 does not cost one fetch per query and a huge one does
	// not outlive any sane rotation.
	MinConfigTTL = 10 * time.Second
	MaxConfigTTL = 24 * time.Hour
	// MaxResponseHeaderBytes bounds the response headers.
	MaxResponseHeaderBytes = 16 << 10
)

// ConfigSource says where the client gets a target's configs.
type ConfigSource int

const (
	// ConfigDefault, the zero value, is ConfigViaProxy when the client has
	// a proxy, and ConfigFromTarget in direct mode (where the target sees
	// the client's address with every query anyway).
	ConfigDefault ConfigSource = iota
	// ConfigFromTarget fetches https://TARGET/.well-known/odohconfigs
	// directly, for proxies without a config relay. It costs privacy: the
	// target sees the client's address at each fetch, and a fetch that
	// closely precedes a query lets the target tie that query to the
	// address by timing. With a proxy the client therefore keeps the
	// configs fresh in the background, at a random point between 80% and
	// 90% of their max-age, and after a 401 it fails the query
	// (ErrKeyMismatch) and fetches again after a random delay of up to
	// RefetchDelay instead of fetching on the query path. A fetch still
	// happens on the query path for the first query (unless Configs was
	// called first) and when background fetches have failed until the
	// configs expired.
	ConfigFromTarget
	// ConfigViaProxy fetches the configs through a proxy's config relay,
	// GET PROXY-ORIGIN/.well-known/odohconfigs?targethost=HOST[:PORT], so
	// the target never sees the client's address. The proxy must offer
	// the relay (this project's odoh-proxy does).
	ConfigViaProxy
	// ConfigStatic uses Options.StaticConfigs and never fetches. A 401 is
	// then final.
	ConfigStatic
)

// Options configure a Client. Proxies and Targets accept URLs and DNS stamps.
type Options struct {
	// Proxies are proxy URI templates (RFC 6570, with targethost and
	// targetpath), plain https proxy URLs, or ODoH relay stamps (sdns://).
	// Each query goes through a random healthy proxy.
	//
	// A relay stamp's Hashes pin the relay: a TLS connection to its host
	// name (any port) must, besides the usual verification, have a
	// certificate in its verified chain whose TBSCertificate has one of
	// the SHA-256 hashes (stamps for the same host add up). Its Addr is
	// dialled for the relay's host:port, unless Resolve maps it. Its
	// Bootstrap resolvers are not used.
	Proxies []string
	// Targets are target URLs (https://host[:port]/dns-query) or ODoH
	// target stamps. Each query goes to a random healthy target.
	Targets []string
	// Direct allows querying targets without a proxy when Proxies is empty.
	// The target then learns both the client's address and its queries.
	Direct bool
	// AllowSameOperator disables the rule that refuses a proxy and a target
	// with the same registrable domain (or IP address). For local testing
	// only: such a pair gives no privacy.
	AllowSameOperator bool
	// HTTP3 uses HTTP/3 (QUIC) instead of HTTP/2.
	HTTP3 bool
	// RootCAs verifies servers; nil means the system roots.
	RootCAs *x509.CertPool
	// Resolve maps "host:port" to the "ip:port" actually dialled, like
	// curl --resolve; TLS still verifies the URL's host name. It wins over
	// a relay stamp's Addr.
	Resolve map[string]string
	// Timeout bounds each Exchange. Zero means DefaultTimeout.
	Timeout time.Duration
	// DialTimeout bounds connection setup. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// Cooldown is how long a failed proxy or target is avoided. Zero means
	// DefaultCooldown.
	Cooldown time.Duration
	// MaxAttempts bounds how many proxy/target pairs a query tries.
	// Zero means DefaultMaxAttempts.
	MaxAttempts int
	// ConfigSource selects how target configs are obtained; the zero value
	// fetches them through the proxy (see ConfigDefault).
	ConfigSource ConfigSource
	// StaticConfigs is an ObliviousDoHConfigs list used with ConfigStatic;
	// it applies to every target.
	StaticConfigs []byte
	// Padding pads query plaintexts to a multiple of this many bytes.
	// Zero means odoh.QueryBlockSize (128, RFC 8467); -1 disables padding.
	Padding int
	// Logger receives failover and config events; nil means slog.Default().
	// Nothing is logged per query at Info level.
	Logger *slog.Logger
}

// Client sends DNS queries over ODoH. It is safe for concurrent use and
// reuses connections; create one and share it.
type Client struct {
	opts     Options
	log      *slog.Logger
	timeout  time.Duration
	dialTO   time.Duration
	cooldown time.Duration
	attempts int
	padding  int
	source   ConfigSource
	// background: configs come from the target while queries go through
	// a proxy, so config fetches are kept off the query path.
	background bool
	// refreshIn and refetchIn pick the delay of a background fetch: before
	// expiry of configs of the given lifetime, and after a 401. Fields, so
	// that tests can shorten them.
	refreshIn func(ttl time.Duration) time.Duration
	refetchIn func() time.Duration
	// bg bounds background and shared fetches; Close cancels it.
	bg       context.Context
	bgCancel context.CancelFunc

	proxies []*endpoint
	targets []*target
	// resolve is Options.Resolve plus the relay stamps' addresses; pins
	// maps a lower-case relay host name to its stamps' hashes.
	resolve map[string]string
	pins    map[string][][]byte
	// urls[p][t] is the expanded URL for proxy p and target t.
	urls [][]string

	hc   *http.Client
	h3   *http3.Transport
	udp  *net.UDPConn
	qtr  *quic.Transport
	stop func()
}

type endpoint struct {
	tmpl      *ProxyTemplate
	downUntil atomic.Int64 // unix nanoseconds
}

type target struct {
	url       *url.URL
	str       string
	cfg       atomic.Pointer[configEntry]
	downUntil atomic.Int64

	mu       sync.Mutex
	fetching *fetchCall
	timer    *time.Timer // the next background fetch
	fails    int         // background fetches failed in a row
	refetch  bool        // a refetch after a 401 is scheduled
}

type configEntry struct {
	cfg     *odoh.Config
	all     []*odoh.Config
	expires time.Time
	maxAge  time.Duration
	static  bool
}

type fetchCall struct {
	done  chan struct{}
	entry *configEntry
	err   error
}

// New validates opts and returns a Client. It does not touch the network.
func New(opts Options) (*Client, error) {
	c := &Client{
		opts:     opts,
		log:      opts.Logger,
		timeout:  orDefault(opts.Timeout, DefaultTimeout),
		dialTO:   orDefault(opts.DialTimeout, DefaultDialTimeout),
		cooldown: orDefault(opts.Cooldown, DefaultCooldown),
		attempts: opts.MaxAttempts,
		padding:  opts.Padding,
		source:   opts.ConfigSource,
	}
	c.refreshIn, c.refetchIn = refreshDelay, refetchDelay
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.padding == 0 {
		c.padding = odoh.QueryBlockSize
	}
	if len(opts.Targets) == 0 {
		return nil, errors.New("no target configured")
	}
	for _, s := range opts.Targets {
		t, err := parseTarget(s)
		if err != nil {
			return nil, err
		}
		c.targets = append(c.targets, t)
	}
	c.resolve = map[string]string{}
	for _, s := range opts.Proxies {
		p, st, err := parseProxy(s)
		if err != nil {
			return nil, err
		}
		c.proxies = append(c.proxies, &endpoint{tmpl: p})
		if err := c.addStamp(st); err != nil {
			return nil, err
		}
	}
	for k, v := range opts.Resolve {
		c.resolve[k] = v
	}
	if len(c.proxies) == 0 {
		if !opts.Direct {
			return nil, ErrNoProxy
		}
		if opts.ConfigSource == ConfigViaProxy {
			return nil, errors.New("configs via proxy need a proxy")
		}
		c.log.Warn("odoh client in direct mode: targets see this client's address with its queries")
	}
	if c.source == ConfigDefault {
		// Through the proxy whenever there is one: a direct fetch just
		// before a query would show the target who asks.
		c.source = ConfigViaProxy
		if len(c.proxies) == 0 {
			c.source = ConfigFromTarget
		}
	}
	c.background = c.source == ConfigFromTarget && len(c.proxies) > 0
	if !opts.AllowSameOperator {
		for _, p := range c.proxies {
			for _, t := range c.targets {
				pd, td := RegistrableDomain(hostOnly(p.tmpl.Host())), RegistrableDomain(t.url.Hostname())
				if pd == td {
					return nil, fmt.Errorf("proxy %q, target %q (%s): %w", p.tmpl, t.str, pd, ErrSameOperator)
				}
			}
		}
	}
	c.urls = make([][]string, len(c.proxies))
	for i, p := range c.proxies {
		c.urls[i] = make([]string, len(c.targets))
		for j, t := range c.targets {
			c.urls[i][j] = p.tmpl.Expand(t.url.Host, t.url.Path)
		}
	}
	if c.source == ConfigStatic {
		cfgs, err := odoh.ParseConfigs(opts.StaticConfigs)
		if err != nil {
			return nil, fmt.Errorf("static configs: %w", err)
		}
		for _, t := range c.targets {
			t.cfg.Store(&configEntry{cfg: cfgs[0], all: cfgs, static: true})
		}
	}
	if err := c.setupHTTP(); err != nil {
		return nil, err
	}
	c.bg, c.bgCancel = context.WithCancel(context.Background())
	return c, nil
}

func (c *Client) setupHTTP() error {
	tlsConf := &tls.Config{RootCAs: c.opts.RootCAs, MinVersion: tls.VersionTLS12}
	if len(c.pins) > 0 {
		tlsConf.VerifyConnection = c.verifyPins
	}
	var rt http.RoundTripper
	if c.opts.HTTP3 {
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			return fmt.Errorf("opening quic socket: %w", err)
		}
		c.udp = udp
		c.qtr = &quic.Transport{Conn: udp}
		c.h3 = &http3.Transport{
			TLSClientConfig:        tlsConf,
			QUICConfig:             &quic.Config{HandshakeIdleTimeout: c.dialTO, KeepAlivePeriod: 15 * time.Second, MaxIdleTimeout: 60 * time.Second},
			DisableCompression:     true,
			MaxResponseHeaderBytes: MaxResponseHeaderBytes,
			Dial: func(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				ua, err := net.ResolveUDPAddr("udp", c.mapAddr(addr))
				if err != nil {
					return nil, err
				}
				return c.qtr.DialEarly(ctx, ua, tc, qc)
			},
		}
		rt = c.h3
	} else {
		tr := &http.Transport{
			Proxy:                  nil, // never an HTTP proxy from the environment
			DialContext:            c.dialTCP,
			TLSClientConfig:        tlsConf,
			ForceAttemptHTTP2:      true,
			DisableCompression:     true,
			TLSHandshakeTimeout:    c.dialTO,
			MaxIdleConns:           64,
			MaxIdleConnsPerHost:    16,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		}
		rt = tr
		c.stop = tr.CloseIdleConnections
	}
	c.hc = &http.Client{
		Transport: rt,
		// Never follow: a redirected query would skip the proxy (C13).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No Jar: no cookies, no client state (C8).
	}
	return nil
}

func (c *Client) mapAddr(addr string) string {
	if a, ok := c.resolve[addr]; ok {
		return a
	}
	return addr
}

func (c *Client) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.dialTO}
	return d.DialContext(ctx, network, c.mapAddr(addr))
}

// Close releases the client's connections and stops background config
// fetches.
func (c *Client) Close() error {
	c.bgCancel()
	for _, t := range c.targets {
		t.mu.Lock()
		if t.timer != nil {
			t.timer.Stop()
		}
		t.mu.Unlock()
	}
	if c.stop != nil {
		c.stop()
	}
	if c.h3 != nil {
		_ = c.h3.Close()
		_ = c.qtr.Close()
		return c.udp.Close()
	}
	return nil
}

// Result is the outcome of one query: the DNS answer and where it came from.
type Result struct {
	// DNS is the answer in wire format, with the query's ID.
	DNS []byte
	// Proxy is the proxy template used ("" in direct mode).
	Proxy string
	// Target is the target URL.
	Target string
	// Duration is the time the exchange took, failover included.
	Duration time.Duration
}

// Exchange sends m through ODoH and returns the answer, with m's ID. The
// query travels with ID 0 (RFC 8484 §4.1); m is not modified.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	q, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing query: %w", err)
	}
	r, err := c.Do(ctx, q)
	if err != nil {
		return nil, err
	}
	a := new(dns.Msg)
	if err := a.Unpack(r.DNS); err != nil {
		return nil, fmt.Errorf("%w: unpacking answer: %w", ErrBadResponse, err)
	}
	return a, nil
}

// ExchangeWire is Exchange on wire-format messages.
func (c *Client) ExchangeWire(ctx context.Context, q []byte) ([]byte, error) {
	r, err := c.Do(ctx, q)
	if err != nil {
		return nil, err
	}
	return r.DNS, nil
}

// Do sends the wire-format query q and returns the answer with details. It
// picks a random healthy proxy and target, and fails over to others on
// transport errors, 5xx answers and bad responses; a 400 is not retried,
// and a 401 is retried once after fetching the target's configs again
// (with ConfigFromTarget and a proxy, only with configs that a background
// fetch already brought: see ConfigFromTarget).
func (c *Client) Do(ctx context.Context, q []byte) (*Result, error) {
	start := time.Now()
	if len(q) < 12 {
		return nil, errors.New("query shorter than a DNS header")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	id0, id1 := q[0], q[1]
	if id0|id1 != 0 {
		q = bytes.Clone(q)
		q[0], q[1] = 0, 0
	}
	var triedP, triedT uint64
	var lastErr error
	for range c.attempts {
		pi, ti := c.pick(&triedP, &triedT, start)
		ans, err := c.try(ctx, pi, ti, q)
		if err == nil {
			if len(ans) < 2 {
				return nil, fmt.Errorf("%w: short dns answer", ErrBadResponse)
			}
			ans[0], ans[1] = id0, id1
			r := &Result{DNS: ans, Target: c.targets[ti].str, Duration: time.Since(start)}
			if pi >= 0 {
				r.Proxy = c.proxies[pi].tmpl.String()
				if c.proxies[pi].downUntil.Load() != 0 {
					c.proxies[pi].downUntil.Store(0)
				}
			}
			if c.targets[ti].downUntil.Load() != 0 {
				c.targets[ti].downUntil.Store(0)
			}
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			break
		}
		until := time.Now().Add(c.cooldown).UnixNano()
		if targetFault(err) {
			c.targets[ti].downUntil.Store(until)
		} else if pi >= 0 {
			c.proxies[pi].downUntil.Store(until)
		}
		c.log.Debug("odoh query failed, failing over", "err", err)
	}
	return nil, lastErr
}

// targetFault reports whether err points at the target rather than the
// proxy: a bad answer, unusable configs, or a proxy saying it could not
// reach the target (Proxy-Status error=…, RFC 9209).
func targetFault(err error) bool {
	if re := (*relayError)(nil); errors.As(err, &re) {
		// The relay failed: the proxy's fault unless it says otherwise.
		err = re.err
	} else if errors.Is(err, ErrBadResponse) || errors.Is(err, ErrConfig) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		// The member closest to us is our proxy's; a Proxy-Status that
		// does not parse blames nobody but the proxy.
		ps, err := odoh.ParseProxyStatus(he.ProxyStatus)
		return err == nil && len(ps) > 0 && ps[len(ps)-1].NextHopFault()
	}
	return false
}

// retryable reports whether another proxy or target may succeed where this
// one failed. Client errors (400, 413, 415) and a 401 after refresh are
// final: another route would fail the same way.
func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.StatusCode == http.StatusBadRequest, he.StatusCode == http.StatusUnauthorized,
			he.StatusCode == http.StatusRequestEntityTooLarge, he.StatusCode == http.StatusUnsupportedMediaType,
			he.StatusCode == http.StatusMethodNotAllowed:
			return false
		}
		return true
	}
	return true
}

// pick chooses a proxy (-1 in direct mode) and a target: random among the
// healthy ones not yet tried for this query, then among untried, then any.
func (c *Client) pick(triedP, triedT *uint64, now time.Time) (int, int) {
	pi := -1
	if len(c.proxies) > 0 {
		pi = choose(len(c.proxies), *triedP, now, func(i int) int64 { return c.proxies[i].downUntil.Load() })
		*triedP |= 1 << (pi % 64)
	}
	ti := choose(len(c.targets), *triedT, now, func(i int) int64 { return c.targets[i].downUntil.Load() })
	*triedT |= 1 << (ti % 64)
	return pi, ti
}

func choose(n int, tried uint64, now time.Time, down func(int) int64) int {
	if n == 1 {
		return 0
	}
	t := now.UnixNano()
	for pass := range 2 {
		cnt := 0
		pickd := -1
		for i := range n {
			if tried&(1<<(i%64)) != 0 || (pass == 0 && down(i) > t) {
				continue
			}
			cnt++
			if rand.IntN(cnt) == 0 { // reservoir sampling: uniform among candidates
				pickd = i
			}
		}
		if pickd >= 0 {
			return pickd
		}
	}
	return rand.IntN(n)
}

// try sends q through proxy pi (or directly) to target ti, refreshing the
// configs once on 401.
func (c *Client) try(ctx context.Context, pi, ti int, q []byte) ([]byte, error) {
	t := c.targets[ti]
	e, err := c.config(ctx, t, pi)
	if err != nil {
		return nil, err
	}
	postURL := t.str
	if pi >= 0 {
		postURL = c.urls[pi][ti]
	}
	ans, err := c.post(ctx, postURL, e.cfg, q)
	var he *HTTPError
	if err == nil || !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || e.static {
		return ans, err
	}
	// 401: the target rotated its keys. Fetch once (shared by every query
	// that saw the same stale config) and retry this query once.
	var e2 *configEntry
	if c.background {
		// A direct fetch now would be followed at once by this query's
		// retry: fetch in the background instead, and retry only with
		// configs that are already newer than the rejected ones.
		if e2 = c.refetchLater(t, e); e2 == nil {
			he.Err = ErrKeyMismatch
			return nil, he
		}
	} else if e2, err = c.refresh(ctx, t, e, pi); err != nil {
		return nil, err
	}
	ans, err = c.post(ctx, postURL, e2.cfg, q)
	if errors.As(err, &he) && he.StatusCode == http.StatusUnauthorized {
		he.Err = ErrKeyMismatch
	}
	return ans, err
}

// Header values shared by every request, read-only: net/http only reads
// them, and their capacity of 1 makes any append copy rather than write.
var (
	hdrCT    = []string{odoh.ContentType}
	hdrCache = []string{"no-cache, no-store"}
	hdrUA    = []string{""}
)

func (c *Client) post(ctx context.Context, postURL string, cfg *odoh.Config, q []byte) ([]byte, error) {
	// QueryPadding caps the padding at the suite's plaintext limit, so a
	// query that fits unpadded is never refused for its padding.
	msg, qctx, err := odoh.SealQueryPadded(cfg, q, cfg.QueryPadding(len(q), c.padding))
	if err != nil {
		return nil, fmt.Errorf("sealing query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, postURL, bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	// Exactly these headers; an empty User-Agent keeps Go's default out.
	req.Header = http.Header{
		"Content-Type":  hdrCT,
		"Accept":        hdrCT,
		"Cache-Control": hdrCache,
		"User-Agent":    hdrUA,
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting query to %s: %w", redactURL(postURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		he := &HTTPError{URL: redactURL(postURL), StatusCode: resp.StatusCode, ProxyStatus: resp.Header.Get("Proxy-Status")}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			he.Err = ErrRedirect
		}
		return nil, he
	}
	if !odoh.HasContentType(resp.Header["Content-Type"], odoh.ContentType) {
		return nil, fmt.Errorf("%w: content type %q", ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, odoh.MaxResponseSize)
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrBadResponse, err)
	}
	ans, err := qctx.OpenResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return ans, nil
}

// redactURL drops the query string, which names the target, from URLs
// that end up in errors and logs.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func parseTarget(s string) (*target, error) {
	if strings.HasPrefix(s, stampPrefix) {
		st, err := ParseStamp(s)
		if err != nil {
			return nil, err
		}
		if st.Proto != StampODoHTarget {
			return nil, fmt.Errorf("target stamp %q is not an ODoH target stamp", s)
		}
		s = st.URL()
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", s, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("target %q: want https://host[:port]/path", s)
	}
	if u.Path == "" {
		u.Path = odoh.QueryPath
	}
	return &target{url: u, str: u.String()}, nil
}

// parseProxy parses a proxy template, URL or relay stamp; the stamp is nil
// for the first two.
func parseProxy(s string) (*ProxyTemplate, *Stamp, error) {
	if !strings.HasPrefix(s, stampPrefix) {
		p, err := ParseProxyTemplate(s)
		return p, nil, err
	}
	st, err := ParseStamp(s)
	if err != nil {
		return nil, nil, err
	}
	if st.Proto != StampODoHRelay {
		return nil, nil, fmt.Errorf("proxy stamp %q is not an ODoH relay stamp", s)
	}
	p, err := ParseProxyTemplate(st.URL())
	return p, &st, err
}

// addStamp records a relay stamp's address and certificate pins.
func (c *Client) addStamp(st *Stamp) error {
	if st == nil {
		return nil
	}
	u, err := url.Parse(st.URL())
	if err != nil {
		return fmt.Errorf("relay stamp %s: %w", st.URL(), err)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "443"
	}
	if st.Addr != "" {
		addr, err := stampAddr(st.Addr, port)
		if err != nil {
			return fmt.Errorf("relay stamp %s: %w", st.URL(), err)
		}
		c.resolve[net.JoinHostPort(host, port)] = addr
	}
	for _, h := range st.Hashes {
		if len(h) != sha256.Size {
			return fmt.Errorf("relay stamp %s: a %d-byte certificate hash, want %d (SHA-256)", st.URL(), len(h), sha256.Size)
		}
		if c.pins == nil {
			c.pins = map[string][][]byte{}
		}
		c.pins[host] = append(c.pins[host], h)
	}
	return nil
}

// stampAddr turns a stamp's address (IP, IP:port, [IPv6] or [IPv6]:port)
// into ip:port, with port when the stamp gives none.
func stampAddr(a, port string) (string, error) {
	ip := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		ip, port = h, p
	}
	ip = strings.Trim(ip, "[]")
	if _, err := netip.ParseAddr(ip); err != nil {
		return "", fmt.Errorf("address %q is not an IP address", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: bad port", a)
	}
	return net.JoinHostPort(ip, port), nil
}

// verifyPins runs after the usual certificate verification: a connection
// to a pinned relay host needs a certificate in its verified chain whose
// TBSCertificate hashes to one of the pins. An IP-literal host sends no
// SNI, so there the pins of every pinned IP the leaf is valid for apply.
func (c *Client) verifyPins(cs tls.ConnectionState) error {
	var pins [][]byte
	if cs.ServerName != "" {
		pins = c.pins[strings.ToLower(cs.ServerName)]
	} else if len(cs.PeerCertificates) > 0 {
		for h, p := range c.pins {
			if _, err := netip.ParseAddr(h); err == nil && cs.PeerCertificates[0].VerifyHostname(h) == nil {
				pins = append(pins, p...)
			}
		}
	}
	if len(pins) == 0 {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			sum := sha256.Sum256(cert.RawTBSCertificate)
			for _, p := range pins {
				if bytes.Equal(sum[:], p) {
					return nil
				}
			}
		}
	}
	name := cs.ServerName
	if name == "" {
		name = "at an IP address"
	}
	return fmt.Errorf("relay %s: %w", name, ErrPinMismatch)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// RegistrableDomain returns what identifies an operator: the registrable
// domain (eTLD+1 by the public suffix list) of a host name, or the address
// itself for an IP literal. Names without a registrable part (localhost, a
// bare suffix) are returned as they are.
func RegistrableDomain(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone("").String()
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return d
	}
	return h
}

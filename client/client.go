package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/internal/stack"
	"github.com/odohd/odoh/internal/writebatch"
	"github.com/odohd/odoh/odoh"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Defaults for the zero values of Config.
const (
	// DefaultTimeout bounds one Exchange, failover and config fetches
	// included. It outlasts a proxy's own bound on a target's answer (10 s
	// by default in this project's proxy), so that the proxy's 502 or 504
	// with its Proxy-Status reaches the caller rather than a bare
	// deadline; dig too waits up to 15 s (3 tries of 5 s).
	DefaultTimeout = 15 * time.Second
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

// Config configures a Client. Proxies and Targets accept URLs and DNS
// stamps; every zero value means the documented default.
type Config struct {
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
	// OHTTP are DNS over HTTPS resolvers reached through Oblivious HTTP
	// relays (see OHTTPTarget), the targets of Firefox's OHTTP mode. They
	// take part beside Targets: each query goes to a random healthy one of
	// either kind, through its own relay.
	OHTTP []OHTTPTarget
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
	// fetches them through the proxy's tunnel (see ConfigDefault).
	ConfigSource ConfigSource
	// StaticConfigs is an ObliviousDoHConfigs list used with ConfigStatic;
	// it applies to every target.
	StaticConfigs []byte
	// Pins restrict targets (and proxies) to certificates and config keys
	// (see Pin). A target stamp's hashes add certificate pins.
	Pins []Pin
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
	log      *slog.Logger
	timeout  time.Duration
	dialTO   time.Duration
	cooldown time.Duration
	attempts int
	padding  int
	http3    bool
	rootCAs  *x509.CertPool

	proxies []*endpoint
	targets []*target
	ohttp   []*ohttpTarget // after targets in the index space of pick
	// resolve is Config.Resolve plus the relay stamps' addresses.
	resolve map[string]string
	// pins are Config.Pins plus the stamps' hashes.
	pins pins
	// urls[p][t] is the request to target t through proxy p; direct[t]
	// the request straight to target t.
	urls    [][]postTarget
	direct  []postTarget
	configs *configs

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
	downUntil atomic.Int64
	cfg       targetConfigs
}

// authority is the target's host:port, as CONNECT names it.
func (t *target) authority() string {
	if t.url.Port() != "" {
		return t.url.Host
	}
	return net.JoinHostPort(t.url.Hostname(), "443")
}

// New checks cfg and returns a Client. It does not touch the network.
func New(cfg Config) (*Client, error) {
	c := &Client{
		log:      cmp.Or(cfg.Logger, slog.Default()),
		timeout:  orDefault(cfg.Timeout, DefaultTimeout),
		dialTO:   orDefault(cfg.DialTimeout, DefaultDialTimeout),
		cooldown: orDefault(cfg.Cooldown, DefaultCooldown),
		attempts: cmp.Or(max(cfg.MaxAttempts, 0), DefaultMaxAttempts),
		padding:  cmp.Or(cfg.Padding, odoh.QueryBlockSize),
		http3:    cfg.HTTP3,
		rootCAs:  cfg.RootCAs,
		resolve:  map[string]string{},
	}
	steps := []func(Config) error{c.addOHTTP, c.addTargets, c.addProxies, c.addPins, c.checkDirect, c.checkOperators, c.setupConfigs}
	for _, step := range steps {
		if err := step(cfg); err != nil {
			return nil, err
		}
	}
	maps.Copy(c.resolve, cfg.Resolve)
	c.urls = make([][]postTarget, len(c.proxies))
	for i, p := range c.proxies {
		c.urls[i] = make([]postTarget, len(c.targets))
		for j, t := range c.targets {
			c.urls[i][j] = newPostTarget(p.tmpl.Expand(t.url.Host, t.url.Path))
		}
	}
	c.direct = make([]postTarget, len(c.targets))
	for j, t := range c.targets {
		c.direct[j] = newPostTarget(t.str)
	}
	if err := c.setupHTTP(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) addTargets(cfg Config) error {
	if len(cfg.Targets) == 0 && len(c.ohttp) == 0 {
		return errors.New("no target configured")
	}
	for _, s := range cfg.Targets {
		t, st, err := parseTarget(s)
		if err != nil {
			return err
		}
		c.targets = append(c.targets, t)
		for _, h := range st.hashes() {
			if err := c.pins.add(Pin{Host: t.url.Hostname(), Cert: h}); err != nil {
				return fmt.Errorf("target stamp %s: %w", t.str, err)
			}
		}
	}
	return nil
}

func (c *Client) addProxies(cfg Config) error {
	for _, s := range cfg.Proxies {
		p, st, err := parseProxy(s)
		if err != nil {
			return err
		}
		c.proxies = append(c.proxies, &endpoint{tmpl: p})
		if err := c.addStamp(st); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) addPins(cfg Config) error {
	for _, p := range cfg.Pins {
		if err := c.pins.add(p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) checkDirect(cfg Config) error {
	if len(c.proxies) > 0 || len(c.targets) == 0 {
		return nil // OHTTP targets bring their relays
	}
	if !cfg.Direct {
		return ErrNoProxy
	}
	c.log.Warn("odoh client in direct mode: targets see this client's address with its queries")
	return nil
}

// checkOperators refuses a proxy and a target of one operator (RFC 9230
// §11), unless allowed for testing.
func (c *Client) checkOperators(cfg Config) error {
	if cfg.AllowSameOperator {
		return nil
	}
	if err := c.checkOHTTPOperators(); err != nil {
		return err
	}
	for _, p := range c.proxies {
		for _, t := range c.targets {
			pd, td := registrableDomain(hostOnly(p.tmpl.Host())), registrableDomain(t.url.Hostname())
			if pd == td {
				where := "under the registrable domain " + pd
				if _, err := netip.ParseAddr(pd); err == nil {
					where = "at the IP address " + pd
				} else if !strings.Contains(pd, ".") {
					where = "at " + pd
				}
				return fmt.Errorf("proxy %s and target %s are both %s: %w", p.tmpl.Host(), t.url.Host, where, ErrSameOperator)
			}
		}
	}
	return nil
}

// setupConfigs picks the config source (ConfigDefault: the tunnel with a
// proxy, the target in direct mode) and checks that it can work.
func (c *Client) setupConfigs(cfg Config) error {
	src := cfg.ConfigSource
	if src == ConfigDefault {
		src = ConfigViaTunnel
		if len(c.proxies) == 0 {
			src = ConfigFromTarget
		}
	}
	withProxy := len(c.proxies) > 0
	switch src {
	case ConfigStatic:
		set, err := c.staticSet(cfg.StaticConfigs)
		if err != nil {
			return err
		}
		c.configs = newConfigs(c, staticSource{set}, false, false)
		for _, t := range c.targets {
			t.cfg.cur.Store(set)
		}
	case ConfigFromTarget:
		c.configs = newConfigs(c, targetSource{c}, withProxy, false)
	case ConfigViaTunnel, ConfigViaRelay:
		if !withProxy {
			return fmt.Errorf("configs via the %s need a proxy", src)
		}
		if src == ConfigViaTunnel {
			c.configs = newConfigs(c, tunnelSource{c}, false, true)
			return nil
		}
		for _, t := range c.targets {
			if c.pins.keys[strings.ToLower(t.url.Hostname())] == nil {
				return fmt.Errorf("configs via the relay alone for target %s: nothing proves they are the target's; pin its config key (Pin.KeyID) or use the tunnel", t.str)
			}
		}
		c.configs = newConfigs(c, relaySource{c}, false, true)
	default:
		return fmt.Errorf("unknown config source %v", src)
	}
	return nil
}

// staticSet parses static configs and checks them against every target's
// key pins: they apply to every target.
func (c *Client) staticSet(b []byte) (*configSet, error) {
	all, err := odoh.ParseConfigs(b)
	if err != nil {
		return nil, fmt.Errorf("static configs: %w", err)
	}
	set := &configSet{cfg: all[0], all: all}
	for _, t := range c.targets {
		if set, err = c.pinned(t, set); err != nil {
			return nil, fmt.Errorf("static configs: %w", err)
		}
	}
	return set, nil
}

func (c *Client) setupHTTP() error {
	tlsConf := &tls.Config{RootCAs: c.rootCAs, MinVersion: tls.VersionTLS12}
	if len(c.pins.certs) > 0 {
		tlsConf.VerifyConnection = c.pins.verify
	}
	var rt http.RoundTripper
	if c.http3 {
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
		// Never follow: a redirected query would skip the proxy.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No Jar: no cookies, no state that links one query to the next.
	}
	return nil
}

func (c *Client) mapAddr(addr string) string {
	if a, ok := c.resolve[addr]; ok {
		return a
	}
	return addr
}

// dialTCP is the HTTP transport's DialContext. Its connections batch their
// writes (see writebatch): the HTTP/2 client flushes a query's HEADERS and
// DATA apart, and they go out in one system call.
func (c *Client) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.dialTO}
	conn, err := d.DialContext(ctx, network, c.mapAddr(addr))
	if err != nil {
		return nil, err
	}
	return writebatch.New(conn), nil
}

// Close releases the client's connections and stops background config
// fetches.
func (c *Client) Close() error {
	c.configs.close(c.targets)
	c.closeOHTTP()
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
// query travels with ID 0 (RFC 8484 §4.1); m is not modified. An answer
// that does not unpack, or does not pack back into one that does (see
// dnscache.CheckRepacks), is ErrBadResponse.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	q, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing query: %w", err)
	}
	q[0], q[1] = 0, 0 // q is ours: no copy needed for the ID 0
	ans, _, _, err := c.do(ctx, q, time.Now())
	if err != nil {
		return nil, err
	}
	// m's ID first: a compression pointer into the header reads it.
	binary.BigEndian.PutUint16(ans, m.Id)
	a := new(dns.Msg)
	if err := a.Unpack(ans); err != nil {
		return nil, fmt.Errorf("%w: unpacking answer: %w", ErrBadResponse, err)
	}
	if err := dnscache.CheckRepacksFrom(a, ans); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return a, nil
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
		return nil, errShortQuery
	}
	id0, id1 := q[0], q[1]
	if id0|id1 != 0 {
		q = bytes.Clone(q)
		q[0], q[1] = 0, 0
	}
	ans, pi, ti, err := c.do(ctx, q, start)
	if err != nil {
		return nil, err
	}
	ans[0], ans[1] = id0, id1
	r := &Result{DNS: ans, Target: c.targetName(ti), Duration: time.Since(start)}
	if oh := c.ohttpAt(ti); oh != nil {
		r.Proxy = oh.relay
	}
	if pi >= 0 {
		r.Proxy = c.proxies[pi].tmpl.String()
	}
	return r, nil
}

// do is Do for a query q of at least a header with ID 0, begun at start:
// the answer (at least 2 bytes), with the proxy (-1 for none) and the
// target that gave it.
func (c *Client) do(ctx context.Context, q []byte, start time.Time) (ans []byte, pi, ti int, err error) {
	if dl, ok := ctx.Deadline(); !ok || dl.Sub(start) > c.timeout {
		// Else ctx ends first anyway (the stub's shorter timeout, say),
		// and another timer would only cost its allocations.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var triedP, triedT uint64
	var lastErr error
	var timedOut [][2]int // pairs whose proxy answered 504; nil, no allocation, unless one did
	for range c.attempts {
		pi, ti = c.pick(&triedP, &triedT, start)
		if slices.Contains(timedOut, [2]int{pi, ti}) {
			// The proxy waited its whole response timeout for this
			// target already: asking it again would only wait as long.
			break
		}
		ans, err = c.try(ctx, pi, ti, q)
		if err == nil {
			if len(ans) < 2 {
				return nil, 0, 0, fmt.Errorf("%w: short dns answer", ErrBadResponse)
			}
			if pi >= 0 && c.proxies[pi].downUntil.Load() != 0 {
				c.proxies[pi].downUntil.Store(0)
			}
			if down := c.targetDown(ti); down.Load() != 0 {
				down.Store(0)
			}
			return ans, pi, ti, nil
		}
		// ended, not ctx.Err: the deadline may have passed before ctx's
		// timer has run, and a retry then would only find the failure
		// of this attempt's shared configs fetch, without the deadline.
		cause := ended(ctx)
		if cause != nil && lastErr != nil && errors.Is(err, cause) {
			// The deadline cut a retry short: the failure before it
			// says what went wrong.
			return nil, 0, 0, fmt.Errorf("%w (then the query's %v timeout ran out retrying)", lastErr, c.timeout)
		}
		lastErr = err
		if cause != nil || !retryable(err) {
			break
		}
		if he, ok := errors.AsType[*HTTPError](err); ok && he.StatusCode == http.StatusGatewayTimeout {
			timedOut = append(timedOut, [2]int{pi, ti})
		}
		until := time.Now().Add(c.cooldown).UnixNano()
		if targetFault(err) || c.ohttpAt(ti) != nil {
			// An OHTTP relay serves its one gateway: they fail together.
			c.targetDown(ti).Store(until)
		} else if pi >= 0 {
			c.proxies[pi].downUntil.Store(until)
		}
		c.log.Debug("odoh query failed, failing over", "err", err)
	}
	return nil, 0, 0, lastErr
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
// An OHTTP target (see ohttpAt) brings its own relay and gets no proxy.
func (c *Client) pick(triedP, triedT *uint64, now time.Time) (int, int) {
	ti := choose(len(c.targets)+len(c.ohttp), *triedT, now, func(i int) int64 { return c.targetDown(i).Load() })
	*triedT |= 1 << (ti % 64)
	pi := -1
	if len(c.proxies) > 0 && c.ohttpAt(ti) == nil {
		pi = choose(len(c.proxies), *triedP, now, func(i int) int64 { return c.proxies[i].downUntil.Load() })
		*triedP |= 1 << (pi % 64)
	}
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

// try sends q through proxy pi (or directly) to target ti, fetching the
// configs again once on 401.
func (c *Client) try(ctx context.Context, pi, ti int, q []byte) ([]byte, error) {
	if oh := c.ohttpAt(ti); oh != nil {
		return c.tryOHTTP(ctx, oh, q)
	}
	t := c.targets[ti]
	set, err := c.configs.get(ctx, t, pi)
	if err != nil {
		return nil, err
	}
	postURL := &c.direct[ti]
	if pi >= 0 {
		postURL = &c.urls[pi][ti]
	}
	ans, err := c.post(ctx, postURL, set.cfg, q)
	he, ok := errors.AsType[*HTTPError](err)
	if !ok || he.StatusCode != http.StatusUnauthorized {
		return ans, err
	}
	// 401: the target rotated its keys.
	if set, err = c.configs.rejected(ctx, t, set, pi); err != nil {
		he.Err = err
		return nil, he
	}
	ans, err = c.post(ctx, postURL, set.cfg, q)
	if he, ok := errors.AsType[*HTTPError](err); ok && he.StatusCode == http.StatusUnauthorized {
		he.Err = fmt.Errorf("after fetching the configs again: %w", odoh.ErrKeyMismatch)
	}
	return ans, err
}

// queryHeader is the header of every query request, shared read-only:
// exactly these fields (an empty User-Agent keeps Go's default out).
// net/http only reads a request's header, and each value's capacity of 1
// makes any append copy rather than write.
var queryHeader = http.Header{
	"Content-Type":  {odoh.ContentType},
	"Accept":        {odoh.ContentType},
	"Cache-Control": {"no-cache, no-store"},
	"User-Agent":    hdrUA,
}

// hdrUA is the empty User-Agent of every request, read-only.
var hdrUA = []string{""}

// postTarget is where one proxy and target pair's queries go: the URL
// parsed and the request built once, so that a query costs a shallow copy
// of the request (see post).
type postTarget struct {
	url string
	req *http.Request // nil if url does not parse
	err error         // why url does not parse: every query's error
}

func newPostTarget(u string) postTarget {
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		return postTarget{url: u, err: err}
	}
	req.Header = queryHeader
	return postTarget{url: u, req: req}
}

// queryBody is a request body over a sealed query. Its GetBody lets the
// HTTP/2 transport send the request again on another connection when the
// one it picked was lost before the request went out.
type queryBody struct {
	bytes.Reader
	msg  []byte
	read bool // Read was called
}

// Read grows the stack on its first call: net/http's HTTP/2 client
// writes each request from a new goroutine, and the first Read is near
// that goroutine's top, while the TLS write of the body that follows
// (AES-GCM) goes past the stack it starts with, where growing costs for
// about twice as many frames.
func (b *queryBody) Read(p []byte) (int, error) {
	if !b.read {
		b.read = true
		stack.Grow()
	}
	return b.Reader.Read(p)
}

func newQueryBody(msg []byte) *queryBody {
	b := &queryBody{msg: msg}
	b.Reset(msg)
	return b
}

func (*queryBody) Close() error { return nil }

func (b *queryBody) rewind() (io.ReadCloser, error) { return newQueryBody(b.msg), nil }

// post sends one query to pt and returns its answer. It calls the
// transport itself rather than an http.Client: the client's redirect
// bookkeeping (it copies the header of every request, in case a redirect
// needs it) is work for nothing where redirects are never followed,
// and without its *url.Error no error carries the unredacted URL.
func (c *Client) post(ctx context.Context, pt *postTarget, cfg *odoh.Config, q []byte) ([]byte, error) {
	postURL := pt.url
	if pt.err != nil {
		return nil, fmt.Errorf("posting query to %s: %w", redactURL(postURL), pt.err)
	}
	// QueryPadding caps the padding at the suite's plaintext limit, so a
	// query that fits unpadded is never refused for its padding.
	msg, qctx, err := odoh.SealQueryPadded(cfg, q, cfg.QueryPadding(len(q), c.padding))
	if err != nil {
		return nil, fmt.Errorf("sealing query: %w", err)
	}
	req := pt.req.WithContext(ctx) // a shallow copy: URL and header shared, read-only
	qb := newQueryBody(msg)
	req.Body, req.GetBody, req.ContentLength = qb, qb.rewind, int64(len(msg))
	resp, err := c.hc.Transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("posting query to %s: %w", redactURL(postURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newHTTPError(postURL, resp)
	}
	if !odoh.HasContentType(resp.Header["Content-Type"], odoh.ContentType) {
		return nil, fmt.Errorf("%w: content type %q", ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, int64(odoh.MaxResponseSizeFor(cfg.Suite())))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrBadResponse, err)
	}
	ans, err := qctx.OpenResponse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return ans, nil
}

// newHTTPError describes a non-200 response to a request to u (whose
// query it drops) and drains a little of its body, so that the
// connection can be reused.
func newHTTPError(u string, resp *http.Response) *HTTPError {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	// Proxy-Status is a list: its field lines are one value joined with
	// commas (RFC 9110 §5.3), the proxy closest to us last.
	he := &HTTPError{URL: redactURL(u), StatusCode: resp.StatusCode, ProxyStatus: strings.Join(resp.Header.Values("Proxy-Status"), ", ")}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		he.Err = ErrRedirect
	}
	return he
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

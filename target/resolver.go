package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver answers DNS queries. Implementations must be safe for concurrent
// use and must not modify q. The answer's ID is the caller's business: the
// Handler sets it to the client's.
type Resolver interface {
	Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
}

// Upstream limits and defaults.
const (
	// DefaultUpstreamTimeout bounds one attempt at one upstream.
	DefaultUpstreamTimeout = 2 * time.Second
	// DefaultMaxIdleConns is the number of idle tcp:// or tls://
	// connections kept per upstream for reuse.
	DefaultMaxIdleConns = 8
	// maxDoHResponse bounds the body read from an https:// upstream.
	maxDoHResponse = 65535
)

// ErrNoUpstream is returned by Upstreams.Resolve when every upstream failed.
var ErrNoUpstream = errors.New("no upstream answered")

// UpstreamOptions configures NewUpstreams.
type UpstreamOptions struct {
	// Timeout bounds one attempt at one upstream; zero means
	// DefaultUpstreamTimeout. The caller's context bounds the whole query.
	Timeout time.Duration
	// MaxIdleConns is the number of idle connections kept per tcp:// or
	// tls:// upstream; zero means DefaultMaxIdleConns.
	MaxIdleConns int
	// TLSConfig is used for tls:// and https:// upstreams (its ServerName
	// is set per upstream); nil means the system roots.
	TLSConfig *tls.Config
	// Dialer dials every upstream connection; nil means a net.Dialer.
	// Tests use it to map names to loopback addresses.
	Dialer *net.Dialer
	// Metrics, if not nil, records upstream latencies, errors and health.
	Metrics *Metrics
	// MaxFails is how many consecutive failures mark an upstream down;
	// zero means DefaultMaxFails, a negative value disables health
	// tracking (every query tries the upstreams in order).
	MaxFails int
	// MinBackoff is how long an upstream first stays down; zero means
	// DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the backoff; zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Now is the clock of the backoff; nil means time.Now. Tests inject
	// their own.
	Now func() time.Time
}

// Upstreams is a failover pool of upstream resolvers: a query goes to the
// first upstream and, if that one fails (error, timeout, SERVFAIL-free
// transport failure), to the next, in order.
//
// The pool tracks the health of each upstream, as DNS forwarders do, so that
// a dead upstream does not cost a timeout on every query: after MaxFails
// consecutive failures an upstream is down for a backoff (MinBackoff,
// doubling up to MaxBackoff while it keeps failing) and queries skip it.
// When the backoff is over, one query probes it in its place in the order;
// an answer brings it back at once, a failure starts a longer backoff.
// Down upstreams are still tried, in order, after every up one has failed,
// so a query never fails without trying them all.
//
// URL forms:
//
//	udp://host[:53]          UDP, retried over TCP when the answer is truncated
//	tcp://host[:53]          TCP, persistent connections reused across queries
//	tls://host[:853]         DNS over TLS (RFC 7858), persistent connections
//	https://host[:443]/path  DNS over HTTPS (RFC 8484), pooled HTTP/2 client
//
// A bare "host:port" means udp://. Queries go upstream with a fresh ID and
// without the client's COOKIE option (a cookie identifies its sender); an
// ECS option the client chose to send goes on, and none is ever added.
// Upstreams is safe for concurrent use; Close releases its connections.
type Upstreams struct {
	ups     []upstream
	health  []health // parallel to ups
	policy  healthPolicy
	timeout time.Duration
	metrics *Metrics
}

// upstream is one resolver of the pool.
type upstream interface {
	exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	close()
}

// NewUpstreams returns a pool of the upstreams in urls, in failover order.
func NewUpstreams(urls []string, o UpstreamOptions) (*Upstreams, error) {
	if len(urls) == 0 {
		return nil, errors.New("upstreams: no upstream given")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultUpstreamTimeout
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{Timeout: o.Timeout}
	}
	switch {
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return nil, errors.New("upstreams: negative backoff")
	case o.MinBackoff == 0:
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.MaxBackoff < o.MinBackoff {
		return nil, fmt.Errorf("upstreams: maximum backoff %v is below the minimum %v", o.MaxBackoff, o.MinBackoff)
	}
	if o.MaxFails == 0 {
		o.MaxFails = DefaultMaxFails
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u := &Upstreams{timeout: o.Timeout, metrics: o.Metrics, policy: healthPolicy{
		maxFails:    int32(max(0, min(o.MaxFails, 1<<30))),
		minBackoff:  o.MinBackoff,
		maxBackoff:  o.MaxBackoff,
		probeWindow: o.Timeout,
		now:         o.Now,
	}}
	for i, raw := range urls {
		up, err := newUpstream(raw, o)
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("upstream %d: %w", i, err)
		}
		u.ups = append(u.ups, up)
	}
	u.health = make([]health, len(u.ups))
	for i := range u.ups {
		u.metrics.setUpstreamUp(i, true)
	}
	return u, nil
}

func newUpstream(raw string, o UpstreamOptions) (upstream, error) {
	if !strings.Contains(raw, "://") {
		raw = "udp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", raw, err)
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("upstream %q: want scheme://host[:port]", raw)
	}
	defPort := map[string]string{"udp": "53", "tcp": "53", "tls": "853", "https": "443"}[u.Scheme]
	if defPort == "" {
		return nil, fmt.Errorf("upstream %q: unknown scheme %q (want udp, tcp, tls or https)", raw, u.Scheme)
	}
	if u.Scheme != "https" && (u.Path != "" && u.Path != "/" || u.RawQuery != "") {
		return nil, fmt.Errorf("upstream %q: %s upstreams take no path", raw, u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(strings.Trim(u.Host, "[]"), defPort)
	}
	tlsConf := o.TLSConfig.Clone()
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = u.Hostname()
	}
	switch u.Scheme {
	case "udp":
		return &udpUpstream{addr: addr, dialer: o.Dialer, timeout: o.Timeout, tcp: newStreamUpstream(addr, nil, o)}, nil
	case "tcp":
		return newStreamUpstream(addr, nil, o), nil
	case "tls":
		return newStreamUpstream(addr, tlsConf, o), nil
	default:
		return newDoHUpstream(u, tlsConf, o), nil
	}
}

// Resolve sends q to each upstream that is up, in turn, until one answers;
// if none does, it tries the down ones, in turn.
func (u *Upstreams) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	var errs []error
	var skippedBuf [8]int
	skipped := skippedBuf[:0]
	for i := range u.ups {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(append(errs, err)...))
		}
		up, probe := true, false
		if u.policy.maxFails > 0 {
			up, probe = u.health[i].admit(&u.policy, u.policy.now().UnixNano())
		}
		if !up {
			skipped = append(skipped, i)
			continue
		}
		r, err := u.try(ctx, i, q, probe)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	// Last resort: every up upstream failed (or none is up).
	for _, i := range skipped {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		r, err := u.try(ctx, i, q, false)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(errs...))
}

// try asks upstream i once, bounded by the per-attempt timeout, and records
// the outcome in its health and the metrics.
func (u *Upstreams) try(ctx context.Context, i int, q *dns.Msg, probe bool) (*dns.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, u.timeout)
	start := time.Now()
	r, err := exchangeID(actx, u.ups[i], q)
	cancel()
	u.metrics.observeUpstream(i, time.Since(start), err)
	switch {
	case u.policy.maxFails <= 0:
	case err == nil:
		if u.health[i].succeeded() {
			u.metrics.setUpstreamUp(i, true)
		}
	case ctx.Err() == nil:
		// Only the upstream's own failures count, not the caller giving up.
		if u.health[i].failed(&u.policy, u.policy.now().UnixNano(), probe) {
			u.metrics.setUpstreamUp(i, false)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %d: %w", i, err)
	}
	return r, nil
}

// exchangeID sends q with a fresh random ID, so that the ID the client chose
// never reaches the upstream, and checks the answer matches the question.
func exchangeID(ctx context.Context, up upstream, q *dns.Msg) (*dns.Msg, error) {
	m := q.Copy()
	m.Id = dns.Id()
	// ECS, a hint the client chose to give (RFC 9230 §1), goes on; its
	// cookie does not. The target never adds options of its own.
	if opt := m.IsEdns0(); opt != nil {
		dropCookies(opt)
	}
	r, err := up.exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	if r.Id != m.Id || !r.Response {
		return nil, errors.New("answer does not match the query")
	}
	if len(m.Question) > 0 && (len(r.Question) != 1 || !sameQuestion(r.Question[0], m.Question[0])) {
		return nil, errors.New("answer is for another question")
	}
	r.Id = q.Id
	return r, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && equalNames(a.Name, b.Name)
}

// Close closes idle connections.
func (u *Upstreams) Close() {
	for _, up := range u.ups {
		up.close()
	}
}

// udpUpstream asks over UDP, from a fresh socket (fresh source port) per
// query, and retries over TCP when the answer is truncated.
type udpUpstream struct {
	addr    string
	dialer  *net.Dialer
	timeout time.Duration
	tcp     *streamUpstream
}

func (u *udpUpstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	// Timeout, because dns.Client otherwise caps every exchange at its
	// 2-second default read timeout, whatever the context allows.
	c := &dns.Client{Net: "udp", Dialer: u.dialer, Timeout: u.timeout, UDPSize: dns.DefaultMsgSize}
	if opt := q.IsEdns0(); opt != nil {
		c.UDPSize = opt.UDPSize()
	}
	r, _, err := c.ExchangeContext(ctx, q, u.addr)
	if err != nil {
		return nil, err
	}
	if r.Truncated {
		return u.tcp.exchange(ctx, q)
	}
	return r, nil
}

func (u *udpUpstream) close() { u.tcp.close() }

// streamUpstream asks over TCP or TLS on persistent connections, one query
// at a time per connection, keeping up to maxIdle idle connections.
type streamUpstream struct {
	addr   string
	tls    *tls.Config // nil: plain TCP
	dialer *net.Dialer
	idle   chan *dns.Conn
}

func newStreamUpstream(addr string, t *tls.Config, o UpstreamOptions) *streamUpstream {
	return &streamUpstream{addr: addr, tls: t, dialer: o.Dialer, idle: make(chan *dns.Conn, o.MaxIdleConns)}
}

func (s *streamUpstream) dial(ctx context.Context) (*dns.Conn, error) {
	var c net.Conn
	var err error
	if s.tls != nil {
		d := tls.Dialer{NetDialer: s.dialer, Config: s.tls}
		c, err = d.DialContext(ctx, "tcp", s.addr)
	} else {
		c, err = s.dialer.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return nil, err
	}
	return &dns.Conn{Conn: c}, nil
}

func (s *streamUpstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	// A reused connection may have been closed by the server while idle:
	// on failure, retry once on a fresh one.
	for attempt := 0; ; attempt++ {
		var c *dns.Conn
		reused := false
		select {
		case c = <-s.idle:
			reused = true
		default:
			var err error
			if c, err = s.dial(ctx); err != nil {
				return nil, err
			}
		}
		r, err := s.roundTrip(ctx, c, q)
		if err == nil {
			select {
			case s.idle <- c:
			default:
				c.Close()
			}
			return r, nil
		}
		c.Close()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

func (s *streamUpstream) roundTrip(ctx context.Context, c *dns.Conn, q *dns.Msg) (*dns.Msg, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultUpstreamTimeout)
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		r, err := c.ReadMsg()
		if err != nil {
			return nil, err
		}
		if r.Id == q.Id {
			return r, nil
		}
		// A late answer to an abandoned query: skip it.
	}
}

func (s *streamUpstream) close() {
	for {
		select {
		case c := <-s.idle:
			c.Close()
		default:
			return
		}
	}
}

// dohUpstream asks a DNS-over-HTTPS resolver with POST over a pooled
// HTTP/2 client.
type dohUpstream struct {
	url    string
	client *http.Client
	tr     *http.Transport
}

func newDoHUpstream(u *url.URL, t *tls.Config, o UpstreamOptions) *dohUpstream {
	tr := &http.Transport{
		DialContext:         o.Dialer.DialContext,
		TLSClientConfig:     t,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: o.MaxIdleConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: o.Timeout,
	}
	return &dohUpstream{url: u.String(), tr: tr, client: &http.Client{
		Transport: tr,
		// A resolver that redirects is misconfigured; do not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (d *dohUpstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	// RFC 8484 §4.1: ID 0 in DoH; the ID check in exchangeID needs ours back.
	id := q.Id
	q.Id = 0
	wire, err := q.Pack()
	q.Id = id
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", dohContentType)
	req.Header.Set("Accept", dohContentType)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.EqualFold(ct, dohContentType) {
		return nil, fmt.Errorf("content type %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoHResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDoHResponse {
		return nil, errors.New("answer too large")
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, err
	}
	r.Id = id
	return r, nil
}

func (d *dohUpstream) close() { d.tr.CloseIdleConnections() }

// SystemUpstreams returns udp:// upstream URLs for the nameservers of a
// resolv.conf file (normally /etc/resolv.conf).
func SystemUpstreams(resolvConf string) ([]string, error) {
	c, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", resolvConf, err)
	}
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, "udp://"+net.JoinHostPort(s, c.Port))
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%s names no nameserver", resolvConf)
	}
	return urls, nil
}

// upstreamLabel is the metric label of upstream i: its index, never its
// address.
func upstreamLabel(i int) string { return strconv.Itoa(i) }

package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnsname"
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

// UpstreamsConfig configures NewUpstreams. Zero values mean the defaults.
type UpstreamsConfig struct {
	// URLs are the upstreams, in failover order: udp://HOST[:53] (TCP
	// when truncated), tcp://HOST[:53], tls://HOST[:853] and
	// https://HOST/PATH; a bare HOST[:PORT] is udp://. Required.
	URLs []string
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
	// Metrics, if not nil, receives upstream latencies, errors and health.
	Metrics UpstreamMetrics
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
//	udp://host[:53]          UDP on pooled sockets, retried over TCP when truncated
//	tcp://host[:53]          TCP, persistent connections reused across queries
//	tls://host[:853]         DNS over TLS (RFC 7858), persistent connections
//	https://host[:443]/path  DNS over HTTPS (RFC 8484), pooled HTTP/2 client
//
// A bare "host:port" means udp://. Queries go upstream with a fresh random
// ID, one query at a time on each pooled socket or connection; an answer
// whose ID, name, type or class is not the query's is dropped (and counted
// in odoh_target_upstream_mismatched_total) while the exchange waits for
// the right one. Queries go without the client's COOKIE option (a cookie
// identifies its sender); an ECS option the client chose to send goes on,
// and none is ever added.
// Upstreams is safe for concurrent use; Close releases its connections.
type Upstreams struct {
	ups     []upstream
	health  []health // parallel to ups
	policy  healthPolicy
	timeout time.Duration
	metrics UpstreamMetrics
}

// upstream is one resolver of the pool.
type upstream interface {
	exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	close()
}

// NewUpstreams returns a pool of the upstreams in o.URLs, in failover order.
func NewUpstreams(o UpstreamsConfig) (*Upstreams, error) {
	urls := o.URLs
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
	bufs := &bufPool{}
	for i, raw := range urls {
		up, err := newUpstream(raw, o, bufs, func() {
			if o.Metrics != nil {
				o.Metrics.UpstreamMismatch(i)
			}
		})
		if err != nil {
			u.Close()
			return nil, fmt.Errorf("upstream %d: %w", i, err)
		}
		u.ups = append(u.ups, up)
	}
	u.health = make([]health, len(u.ups))
	for i := range u.ups {
		u.setUp(i, true)
	}
	return u, nil
}

func newUpstream(raw string, o UpstreamsConfig, bufs *bufPool, mismatch func()) (upstream, error) {
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
		return newUDPUpstream(addr, o, bufs, mismatch), nil
	case "tcp":
		return newStreamUpstream(addr, nil, o, bufs, mismatch), nil
	case "tls":
		return newStreamUpstream(addr, tlsConf, o, bufs, mismatch), nil
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
	if u.metrics != nil {
		u.metrics.UpstreamExchange(i, time.Since(start), err != nil)
	}
	switch {
	case u.policy.maxFails <= 0:
	case err == nil:
		if u.health[i].succeeded() {
			u.setUp(i, true)
		}
	case ctx.Err() == nil:
		// Only the upstream's own failures count, not the caller giving up.
		if u.health[i].failed(&u.policy, u.policy.now().UnixNano(), probe) {
			u.setUp(i, false)
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
	m := upstreamQuery(q)
	r, err := up.exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	if !answers(r, m) {
		return nil, errMismatch
	}
	if err := checkRepacks(r); err != nil {
		return nil, err
	}
	r.Id = q.Id
	return r, nil
}

// checkRepacks reports whether r, packed again, is a message a client can
// read. The DNS library unpacks some records it cannot pack back (one with
// empty RDATA packs without its domain names, which the client then reads
// as garbage): such an answer is the upstream's failure, never relayed.
func checkRepacks(r *dns.Msg) error {
	wire, err := r.Pack()
	if err == nil {
		err = new(dns.Msg).Unpack(wire)
	}
	if err != nil {
		return fmt.Errorf("answer cannot be relayed: %w", err)
	}
	return nil
}

// answers reports whether r is an answer to q: q's ID and opcode, the QR
// bit, and q's question (name, type and class). An answer with another
// opcode (a NOTIFY "answering" a query, say) is no answer to it.
func answers(r, q *dns.Msg) bool {
	return r.Id == q.Id && r.Response && r.Opcode == q.Opcode &&
		(len(q.Question) == 0 || len(r.Question) == 1 && sameQuestion(r.Question[0], q.Question[0]))
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && dnsname.Equal(a.Name, b.Name)
}

// Close closes idle connections.
func (u *Upstreams) Close() {
	for _, up := range u.ups {
		up.close()
	}
}

// setUp reports the health of upstream i.
func (u *Upstreams) setUp(i int, up bool) {
	if u.metrics != nil {
		u.metrics.UpstreamUp(i, up)
	}
}

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

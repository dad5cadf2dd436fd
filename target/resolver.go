package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
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
	// DefaultRaceDelay is how long an attempt at an upstream that is not
	// known to be up (the probe of a down upstream, or a last-resort try
	// while every upstream is down) runs alone before the next upstream is
	// asked too.
	DefaultRaceDelay = 250 * time.Millisecond
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
	// RaceDelay is how long an attempt at an upstream that is not known to
	// be up runs alone before the next upstream is asked too (see
	// Upstreams); zero means DefaultRaceDelay, at most Timeout.
	RaceDelay time.Duration
	// Now is the clock of the backoff; nil means time.Now. Tests inject
	// their own.
	Now func() time.Time
}

// Upstreams is a failover pool of upstream resolvers: a query goes to the
// first upstream and, if that one fails, to the next, in order. An upstream
// fails a query with an error, a timeout, or an answer that is not one:
// any rcode but NOERROR, NXDOMAIN and YXDOMAIN (SERVFAIL, REFUSED, FORMERR,
// NOTIMP, …), as Unbound does for its forwarders and CoreDNS's forward with
// "failover SERVFAIL REFUSED": another upstream may well answer (a REFUSED
// is often one resolver's access list, a SERVFAIL one resolver's broken
// path), and the cache serves stale answers only when none does. When
// every upstream fails, the query gets the first SERVFAIL answer (with its
// Extended DNS Errors) if there was one, else ErrNoUpstream.
//
// The pool tracks the health of each upstream, as DNS forwarders do, so that
// a dead upstream does not cost a timeout on every query: after MaxFails
// consecutive failures (SERVFAIL and REFUSED answers included) an upstream is
// down for a backoff (MinBackoff, doubling up to MaxBackoff while it keeps
// failing) and queries skip it. When the backoff is over, one query probes
// it in its place in the order; an answer brings it back at once, a failure
// starts a longer backoff. Down upstreams are still tried, in order, after
// every up one has failed, so a query never fails without trying them all.
//
// An attempt at an upstream that is not known to be up (a probe, or a
// last-resort try while every upstream is down) gets RaceDelay to itself;
// then the next upstream is asked too, and the first answer wins. So an
// upstream that silently drops queries costs a query RaceDelay, not a
// whole Timeout, when it is probed or when all are down and another has
// come back. A probe runs to its end even when another upstream answered
// first, so that its upstream's recovery is seen. Up upstreams are asked
// one at a time: a slow recursive answer is not duplicated.
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
	ups       []upstream
	health    []health // parallel to ups
	policy    healthPolicy
	timeout   time.Duration
	raceDelay time.Duration
	metrics   UpstreamMetrics
	// Probes outlive the query that started them, not the pool: Close
	// cancels life and waits for them.
	life    context.Context
	endLife context.CancelFunc
	probes  sync.WaitGroup
}

// upstream is one resolver of the pool. exchange asks it once: ctx cancels
// the attempt, deadline (never after ctx's) ends it. The deadline comes apart
// from ctx so that an attempt costs no context and timer of its own: a UDP
// exchange sets it on its socket and needs no more.
type upstream interface {
	exchange(ctx context.Context, deadline time.Time, q *dns.Msg) (*dns.Msg, error)
	close()
}

// repackChecker is an upstream whose exchange refuses itself, with the
// bytes at hand, the answers dnscache.CheckRepacks refuses; exchangeID
// checks every other upstream's.
type repackChecker interface{ checksRepack() }

func (*udpUpstream) checksRepack()    {}
func (*streamUpstream) checksRepack() {}

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
	switch {
	case o.RaceDelay < 0:
		return nil, errors.New("upstreams: negative race delay")
	case o.RaceDelay == 0:
		o.RaceDelay = DefaultRaceDelay
	}
	u := &Upstreams{timeout: o.Timeout, raceDelay: min(o.RaceDelay, o.Timeout), metrics: o.Metrics, policy: healthPolicy{
		maxFails:    int32(max(0, min(o.MaxFails, 1<<30))),
		minBackoff:  o.MinBackoff,
		maxBackoff:  o.MaxBackoff,
		probeWindow: o.Timeout,
		now:         o.Now,
	}}
	u.life, u.endLife = context.WithCancel(context.Background())
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
// if none does, it tries the down ones. Attempts at upstreams not known to
// be up are raced (see Upstreams).
func (u *Upstreams) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	// f stays on the stack (its list of down upstreams, rarely needed,
	// grows on the heap), so a query that the first upstream answers
	// allocates nothing here.
	var f failures
	for i := range u.ups {
		if err := ctx.Err(); err != nil {
			return f.result(err)
		}
		up, probe := u.admit(i)
		switch {
		case !up:
			f.skipped = append(f.skipped, i)
		case probe:
			// The rest of the order races against the probe.
			return u.race(ctx, q, &f, i, i+1)
		default:
			r, err := u.try(ctx, i, q, false)
			if err == nil {
				return r, nil
			}
			f.note(r, err)
		}
	}
	if len(f.skipped) == 0 {
		return f.result(nil)
	}
	// Last resort: every up upstream failed (or none is up).
	return u.race(ctx, q, &f, -1, len(u.ups))
}

// admit reports whether a query should try upstream i now, and whether
// that try is the probe of a down upstream.
func (u *Upstreams) admit(i int) (up, probe bool) {
	if u.policy.maxFails <= 0 {
		return true, false
	}
	return u.health[i].admit(&u.policy, u.policy.now().UnixNano())
}

// failures is what the failed attempts at one query left.
type failures struct {
	errs     []error
	servfail *dns.Msg // the first SERVFAIL answer
	skipped  []int    // down upstreams, in order, for the last resort
}

func (f *failures) note(r *dns.Msg, err error) {
	f.errs = append(f.errs, err)
	if f.servfail == nil && r != nil && r.Rcode == dns.RcodeServerFailure {
		f.servfail = r
	}
}

// result is the query's outcome when no upstream answered: the first
// SERVFAIL, or ErrNoUpstream with every attempt's error (and extra).
func (f *failures) result(extra error) (*dns.Msg, error) {
	if f.servfail != nil {
		return f.servfail, nil
	}
	if extra != nil {
		f.errs = append(f.errs, extra)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoUpstream, errors.Join(f.errs...))
}

// attempt is the outcome of one raced try.
type attempt struct {
	r      *dns.Msg
	err    error
	racing bool // at an upstream not known to be up
}

// race tries the upstreams from probe (if not -1, already admitted as a
// probe), then those from next on in order, then the skipped ones. An
// attempt at an up upstream runs alone until it fails; one at an upstream
// not known to be up gets u.raceDelay, after which the next starts too; a
// failure starts the next at once. The first answer wins. Probes run on
// after the query returns (bounded by the upstream timeout), to record
// their upstream's health; the other attempts are cancelled.
func (u *Upstreams) race(ctx context.Context, q *dns.Msg, f *failures, probe, next int) (*dns.Msg, error) {
	// Attempts may outlive the call (probes by design, cancelled ones
	// for a moment), so they read a copy of q the caller cannot change.
	q = q.Copy()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each upstream is tried at most once: no sender ever blocks.
	results := make(chan attempt, len(u.ups))
	running, racing := 0, 0
	start := func(i int, kind int) {
		running++
		if kind != kindUp {
			racing++
		}
		if kind == kindProbe {
			u.probes.Go(func() {
				r, err := u.try(u.life, i, q, true)
				results <- attempt{r: r, err: err, racing: true}
			})
			return
		}
		go func() {
			r, err := u.try(rctx, i, q, false)
			results <- attempt{r: r, err: err, racing: kind != kindUp}
		}()
	}
	last := 0 // next of f.skipped
	// launch starts the next candidate and reports whether there was one.
	launch := func() bool {
		for next < len(u.ups) {
			i := next
			next++
			switch up, isProbe := u.admit(i); {
			case !up:
				f.skipped = append(f.skipped, i)
			case isProbe:
				start(i, kindProbe)
				return true
			default:
				start(i, kindUp)
				return true
			}
		}
		if last < len(f.skipped) {
			start(f.skipped[last], kindLastResort)
			last++
			return true
		}
		return false
	}
	if probe >= 0 {
		start(probe, kindProbe)
	} else if !launch() {
		return f.result(nil)
	}
	delay := time.NewTimer(u.raceDelay)
	defer delay.Stop()
	for {
		select {
		case a := <-results:
			running--
			if a.racing {
				racing--
			}
			if a.err == nil {
				return a.r, nil
			}
			f.note(a.r, a.err)
			// A failure starts the next at once (RFC 8305 §5 does so
			// for connection attempts), unless an up upstream is still
			// being asked: those are asked one at a time.
			if running == racing {
				if launch() {
					delay.Reset(u.raceDelay)
				} else if running == 0 {
					return f.result(nil)
				}
			}
		case <-delay.C:
			// Only attempts at upstreams not known to be up are raced.
			if running == racing && launch() {
				delay.Reset(u.raceDelay)
			}
		case <-ctx.Done():
			return f.result(ctx.Err())
		}
	}
}

// Kinds of attempt in a race.
const (
	kindUp = iota
	kindProbe
	kindLastResort
)

// try asks upstream i once, bounded by the per-attempt timeout, and records
// the outcome in its health and the metrics. An answer whose rcode is not
// final is returned with an error.
func (u *Upstreams) try(ctx context.Context, i int, q *dns.Msg, probe bool) (*dns.Msg, error) {
	start := time.Now()
	deadline := start.Add(u.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	r, err := exchangeID(ctx, deadline, u.ups[i], q)
	if err == nil && !finalRcode(r.Rcode) {
		err = fmt.Errorf("answered %s", rcodeName(r.Rcode))
	}
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
		return r, fmt.Errorf("upstream %d: %w", i, err)
	}
	return r, nil
}

// finalRcode reports whether an answer with rcode answers the query, so
// that no other upstream is asked: NOERROR (NODATA included), NXDOMAIN, and
// YXDOMAIN (a DNAME substitution too long, RFC 6672 §2.2).
func finalRcode(rcode int) bool {
	return rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError || rcode == dns.RcodeYXDomain
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rcode)
}

// exchangeID sends q with a fresh random ID, so that the ID the client chose
// never reaches the upstream, and checks the answer matches the question.
func exchangeID(ctx context.Context, deadline time.Time, up upstream, q *dns.Msg) (*dns.Msg, error) {
	m := upstreamQuery(q)
	r, err := up.exchange(ctx, deadline, m)
	if err != nil {
		return nil, err
	}
	if !answers(r, m) {
		return nil, errMismatch
	}
	if _, ok := up.(repackChecker); !ok {
		if err := dnscache.CheckRepacks(r); err != nil {
			return nil, err
		}
	}
	r.Id = q.Id
	return r, nil
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

// Close ends the probes still running and closes idle connections.
func (u *Upstreams) Close() {
	u.endLife()
	u.probes.Wait()
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

package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/odohd/odoh/internal/connlimit"
	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/dnsname"
	"github.com/odohd/odoh/internal/dualport"
)

// Defaults for the zero values of StubConfig.
const (
	// DefaultStubAddr is where a stub listens by default.
	DefaultStubAddr = "127.0.0.1:5353"
	// DefaultCacheSize is the number of entries the stub's cache holds.
	DefaultCacheSize = dnscache.DefaultSize
	// DefaultMaxCacheTTL caps how long an answer is cached, whatever its TTL.
	DefaultMaxCacheTTL = dnscache.DefaultMaxTTL
	// DefaultMaxNegativeCacheTTL caps how long NXDOMAIN and NODATA are cached.
	DefaultMaxNegativeCacheTTL = dnscache.DefaultMaxNegativeTTL
	// DefaultFailureCacheTTL caps how long a failure is cached.
	DefaultFailureCacheTTL = dnscache.DefaultFailureTTL
	// DefaultStaleAge is how long past expiry an answer may be served while
	// the target cannot be reached.
	DefaultStaleAge = dnscache.DefaultStaleAge
	// DefaultStubMaxTCPConns and DefaultStubMaxTCPConnsPerClient cap the
	// stub's TCP connections, in all and from one address (IPv6: one /64):
	// beyond them a new connection is reset at once (internal/connlimit).
	// Each idle connection holds a goroutine and its buffers (a few KiB)
	// until the DNS server's idle timeout; a client needs one, or a few.
	DefaultStubMaxTCPConns          = 1024
	DefaultStubMaxTCPConnsPerClient = 256
	// DefaultMaxInFlight bounds the queries the stub forwards at once.
	DefaultMaxInFlight = 1024
	// DefaultMaxInFlightPerName bounds the queries for one name the stub
	// forwards at once.
	DefaultMaxInFlightPerName = 8
	// DefaultStubTimeout bounds the handling of one query.
	DefaultStubTimeout = 5 * time.Second
	// servfailLogInterval is how often the stub logs one reason for
	// answering SERVFAIL; the times in between are counted.
	servfailLogInterval = 10 * time.Second
)

// StubMetrics receives what a Stub's cache reports; methods must be safe for
// concurrent use.
type StubMetrics interface {
	CacheHit()              // answered from a live entry
	CacheMiss()             // forwarded (coalesced queries included)
	CacheStale()            // a stale answer served while the target failed
	CacheFailure()          // answered with a cached failure
	CacheCoalesced()        // joined an identical query in flight
	CacheFlush(removed int) // a flush, and the entries it removed
	CacheEntries(n int)     // entries held
}

// StubConfig configures NewStub. Zero values mean the documented defaults.
type StubConfig struct {
	// Client forwards the queries. Required.
	Client *Client
	// Addr is the "host:port" to listen on (UDP and TCP); empty means
	// DefaultStubAddr, port 0 picks a port free on both.
	Addr string
	// CacheSize bounds the cache in entries; zero means DefaultCacheSize,
	// negative disables the cache: every query is forwarded as it comes,
	// without coalescing or failure caching (for debugging).
	CacheSize int
	// MaxCacheTTL caps answer lifetimes; zero means DefaultMaxCacheTTL.
	MaxCacheTTL time.Duration
	// MaxNegativeCacheTTL caps NXDOMAIN and NODATA lifetimes (RFC 2308);
	// zero means DefaultMaxNegativeCacheTTL.
	MaxNegativeCacheTTL time.Duration
	// FailureCacheTTL caps the caching of failures, from 1 s to 5 min
	// (RFC 9520); zero means DefaultFailureCacheTTL.
	FailureCacheTTL time.Duration
	// StaleAge bounds how long past expiry an answer is served while the
	// target fails (RFC 8767), at most 24 h; zero means DefaultStaleAge,
	// negative disables stale answers.
	StaleAge time.Duration
	// StaleAnswerTimeout is how long a query whose answer has expired (and
	// is at most StaleAge old) waits for ODoH before it gets the stale
	// answer, RFC 8767 §5's client response timer; the ODoH answer still
	// refreshes the cache when it comes. Zero (the default) or
	// negative waits for ODoH to answer or fail; RFC 8767 §5 suggests 1.8 s.
	StaleAnswerTimeout time.Duration
	// MaxInFlight bounds concurrent forwarded queries; zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxInFlightPerName bounds concurrent forwarded queries for one name
	// (all types); zero means DefaultMaxInFlightPerName.
	MaxInFlightPerName int
	// Timeout bounds one query; zero means DefaultStubTimeout.
	Timeout time.Duration
	// MaxTCPConns and MaxTCPConnsPerClient cap the TCP connections held,
	// in all and from one client address (IPv6: one /64); beyond them a
	// new connection is reset at once. Zero means DefaultStubMaxTCPConns
	// and DefaultStubMaxTCPConnsPerClient, negative no cap.
	MaxTCPConns, MaxTCPConnsPerClient int
	// Metrics, if not nil, receives the cache's counts.
	Metrics StubMetrics
	// Logger receives errors and, at most every 10 s for each reason, why
	// queries were answered SERVFAIL; nil means slog.Default(). Queries,
	// names and addresses are never logged.
	Logger *slog.Logger
}

// Stub is a local DNS server (UDP and TCP on one port) that answers every
// query through ODoH. It never falls back to plaintext DNS: when ODoH fails
// the answer is SERVFAIL, or a stale answer (see below).
//
// Answers are cached with the rules the target's cache follows (see the
// target package's Cache): keys by name (ASCII case folded), type, class,
// DO and CD bits; negative answers per RFC 2308; SERVFAIL and failures
// cached briefly (RFC 9520); identical queries in flight forwarded once;
// expired answers served with the Extended DNS Error "Stale Answer" while
// the target cannot answer, or, if StaleAnswerTimeout is set, has not
// within it (RFC 8767); each client gets an OPT record
// made for its own query, so that no client sees another's ECS echo.
//
// At most MaxInFlight queries, and MaxInFlightPerName for one name, are
// forwarded at once; a query beyond that is answered SERVFAIL at once rather
// than dropped, so that the client learns of the overload without waiting
// for its timeout, and a name whose servers vanished costs the target at
// most one query per client query.
type Stub struct {
	client   *Client
	cache    *dnscache.Cache
	timeout  time.Duration
	sem      chan struct{}
	perName  int
	logger   *slog.Logger
	servfail servfailLog
	// fwd is forward, bound once: a method value made per query would
	// be allocated per query.
	fwd dnscache.Fetch

	namesMu sync.Mutex
	names   map[string]int // queries in flight by lower-cased name

	pc      net.PacketConn
	ln      net.Listener
	udp     *udpServer // stubudp.go
	tcp     *dns.Server
	started sync.WaitGroup // the two servers' start notifications
	// udpStarted is the UDP server's start notification.
	udpStarted func()
	serving    atomic.Bool
	stopOnce   sync.Once
	// ctx is the base of every query's context; cancel ends the queries
	// that outlive a drain.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // queries being answered
}

// NewStub validates c and binds the stub's UDP and TCP sockets.
func NewStub(c StubConfig) (*Stub, error) {
	if c.Client == nil {
		return nil, errors.New("stub without a client")
	}
	if c.Addr == "" {
		c.Addr = DefaultStubAddr
	}
	if c.MaxInFlight < 0 || c.MaxInFlightPerName < 0 || c.Timeout < 0 {
		return nil, errors.New("stub: negative in-flight limit or timeout")
	}
	cache, err := dnscache.New(dnscache.Config{
		Size:               c.CacheSize,
		MaxTTL:             c.MaxCacheTTL,
		MaxNegativeTTL:     c.MaxNegativeCacheTTL,
		FailureTTL:         c.FailureCacheTTL,
		StaleAge:           c.StaleAge,
		StaleAnswerTimeout: c.StaleAnswerTimeout,
		Metrics:            c.Metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("stub: %w", err)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxInFlightPerName == 0 {
		c.MaxInFlightPerName = DefaultMaxInFlightPerName
	}
	s := &Stub{
		client:  c.Client,
		cache:   cache,
		timeout: orDefault(c.Timeout, DefaultStubTimeout),
		sem:     make(chan struct{}, c.MaxInFlight),
		perName: c.MaxInFlightPerName,
		logger:  c.Logger,
		names:   make(map[string]int),
	}
	s.fwd = s.forward
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.servfail.logger = s.logger
	if s.ln, s.pc, err = listenBoth(c.Addr); err != nil {
		return nil, err
	}
	s.ln = connlimit.NewListener(s.ln, connlimit.ListenerConfig{
		// Zero is the default, negative no cap (0 for connlimit).
		Limiter: connlimit.New(max(cmp.Or(c.MaxTCPConns, DefaultStubMaxTCPConns), 0),
			max(cmp.Or(c.MaxTCPConnsPerClient, DefaultStubMaxTCPConnsPerClient), 0)),
		Logger: s.logger,
	})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.started.Add(2)
	notify := sync.OnceFunc(s.started.Done)
	notify2 := sync.OnceFunc(s.started.Done)
	if s.udp, err = newUDPServer(s, s.pc, c.MaxInFlight+udpSpareWorkers); err != nil {
		_ = s.closeSockets()
		return nil, err
	}
	s.udpStarted = notify
	s.tcp = &dns.Server{Listener: s.ln, Handler: s, NotifyStartedFunc: notify2}
	return s, nil
}

// listenBoth binds TCP and UDP on one address; with port 0, on a port free
// for both.
func listenBoth(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("stub address %q: %w", addr, err)
	}
	ln, pc, err := dualport.Listen(host, port)
	if err != nil {
		return nil, nil, fmt.Errorf("stub on %s: %w", addr, err)
	}
	return ln, pc, nil
}

// Addr returns the bound "host:port" (UDP and TCP).
func (s *Stub) Addr() string { return s.ln.Addr().String() }

// Serve answers queries until ctx is cancelled or Shutdown is called; then
// it drains (queries being answered finish, each bounded by the timeout)
// and returns nil. It returns a serving error if a socket fails.
func (s *Stub) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("stub: Serve called twice")
	}
	errc := make(chan error, 2)
	go func() { errc <- s.udp.serve(s.udpStarted) }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	select {
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		if err := s.Shutdown(dctx); err != nil {
			s.logger.Warn("stub drain cut short", "err", err)
		}
		cancel()
	case <-s.ctx.Done(): // Shutdown or Close
	case err := <-errc:
		if err == nil {
			// A server returns nil only once Shutdown or Close stopped
			// it: the end of serving, which may win the race with
			// s.ctx.Done() above, not a failure.
			<-errc
			return nil
		}
		// One server failed, maybe before it started: closing the
		// sockets stops the other.
		s.serving.Store(false)
		_ = s.Close()
		<-errc
		return fmt.Errorf("stub: serving: %w", err)
	}
	<-errc
	<-errc
	return nil
}

// Shutdown stops reading queries and waits for those being answered, until
// ctx is done; then it cancels what remains and closes the sockets.
func (s *Stub) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.serving.Load() {
			s.started.Wait()
			err = errors.Join(s.udp.shutdown(ctx), s.tcp.ShutdownContext(ctx))
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
		s.cancel()
		err = errors.Join(err, s.closeSockets())
	})
	return err
}

// Close closes the sockets at once, cancelling queries being answered.
func (s *Stub) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *Stub) closeSockets() error {
	err := s.ln.Close()
	if e := s.pc.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
		err = errors.Join(err, e)
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Flush removes the cached answers and failures of name (every type and
// class) and, with subtree, of every name below it; Flush(".", true)
// empties the cache. It returns the number of entries removed.
func (s *Stub) Flush(name string, subtree bool) int { return s.cache.Flush(name, subtree) }

// ServeDNS answers one query (dns.Handler): the stub's TCP server calls
// it, and a dns.Server of the caller's may (the stub's own UDP socket has
// its own workers, stubudp.go).
func (s *Stub) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.wg.Add(1)
	defer s.wg.Done()
	resp := s.answer(r)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		resp.Truncate(udpSize(r))
	}
	if err := w.WriteMsg(resp); err != nil {
		s.logger.Debug("writing dns answer", "err", err)
	}
}

func (s *Stub) answer(r *dns.Msg) *dns.Msg {
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotImplemented)
		return m
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	a, err := s.cache.Resolve(ctx, r, s.fwd)
	if err != nil {
		s.servfail.note(failureReason(err))
		s.logger.Debug("odoh exchange failed", "err", err)
		return servfail(r)
	}
	if a.Rcode == dns.RcodeServerFailure {
		s.servfail.note("target_servfail")
	}
	return a
}

// Errors of the stub's own limits: the query never left the stub.
var (
	errOverloaded = fmt.Errorf("too many queries in flight (MaxInFlight): %w", dnscache.ErrNotSent)
	errNameBusy   = fmt.Errorf("too many queries in flight for one name (MaxInFlightPerName): %w", dnscache.ErrNotSent)
)

// forward sends q through ODoH within the stub's limits.
func (s *Stub) forward(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	name := dnsname.Lower(q.Question[0].Name)
	s.namesMu.Lock()
	if s.names[name] >= s.perName {
		s.namesMu.Unlock()
		return nil, errNameBusy
	}
	s.names[name]++
	s.namesMu.Unlock()
	defer func() {
		s.namesMu.Lock()
		if s.names[name]--; s.names[name] == 0 {
			delete(s.names, name)
		}
		s.namesMu.Unlock()
	}()
	select {
	case s.sem <- struct{}{}:
	default:
		return nil, errOverloaded
	}
	defer func() { <-s.sem }()
	return s.client.Exchange(ctx, q)
}

// servfail is the stub's own SERVFAIL for r, with an OPT record if r had
// one (RFC 6891 §7).
func servfail(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	dnscache.SetOPT(m, r)
	return m
}

// failureReason names why a query failed without a name or an address:
// the stub's own limits, else the client's Classify (with the status of an
// HTTP error), marked when the cache answered a failure it holds.
func failureReason(err error) string {
	switch {
	case errors.Is(err, errOverloaded):
		return "max_inflight"
	case errors.Is(err, errNameBusy):
		return "max_inflight_per_name"
	}
	reason := string(Classify(err))
	var he *HTTPError
	if errors.As(err, &he) {
		reason += " " + strconv.Itoa(he.StatusCode)
	}
	if errors.Is(err, dnscache.ErrCachedFailure) {
		reason += " (cached failure)"
	}
	return reason
}

// servfailLog logs each reason for answering SERVFAIL at most once every
// servfailLogInterval, with the number of times it was not logged since.
type servfailLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	byWhy  map[string]*reasonLog
}

type reasonLog struct {
	every  rate.Sometimes
	missed atomic.Int64
}

func (l *servfailLog) note(reason string) {
	l.mu.Lock()
	if l.byWhy == nil {
		l.byWhy = make(map[string]*reasonLog)
	}
	r := l.byWhy[reason]
	if r == nil {
		r = &reasonLog{every: rate.Sometimes{Interval: servfailLogInterval}}
		l.byWhy[reason] = r
	}
	l.mu.Unlock()
	logged := false
	r.every.Do(func() {
		logged = true
		l.logger.Warn("answering SERVFAIL", "reason", reason,
			"more_since_last_log", r.missed.Swap(0), "log_interval", servfailLogInterval.String())
	})
	if !logged {
		r.missed.Add(1)
	}
}

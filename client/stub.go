package client

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults for the zero values of Stub's settings.
const (
	// DefaultCacheSize is the number of answers the stub keeps.
	DefaultCacheSize = 10000
	// DefaultMaxCacheTTL caps how long an answer is cached, whatever its TTL.
	DefaultMaxCacheTTL = time.Hour
	// DefaultMaxInFlight bounds the queries the stub forwards at once.
	DefaultMaxInFlight = 1024
	// DefaultStubTimeout bounds the handling of one query.
	DefaultStubTimeout = 5 * time.Second
)

// Stub is a local DNS server (UDP and TCP on one port) that answers every
// query through ODoH. It never falls back to plaintext DNS: when ODoH fails
// the answer is SERVFAIL.
//
// Answers are cached in a bounded LRU keyed by (lower-cased name, type,
// class, DO bit), for the smallest TTL in the answer (negative answers: the
// SOA minimum, RFC 2308), capped by MaxCacheTTL; TTLs are decreased on the
// way out. SERVFAIL is never cached.
//
// At most MaxInFlight queries are forwarded at once; a query beyond that is
// answered SERVFAIL at once rather than dropped, so that the client learns of
// the overload without waiting for its timeout.
type Stub struct {
	// Client forwards the queries. Required.
	Client *Client
	// Addr is the "host:port" to listen on (UDP and TCP); port 0 picks a
	// port free on both.
	Addr string
	// CacheSize bounds the cache in entries; zero means DefaultCacheSize,
	// negative disables the cache.
	CacheSize int
	// MaxCacheTTL caps cache lifetimes; zero means DefaultMaxCacheTTL.
	MaxCacheTTL time.Duration
	// MaxInFlight bounds concurrent forwarded queries; zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// Timeout bounds one query; zero means DefaultStubTimeout.
	Timeout time.Duration
	// Logger receives errors; nil means slog.Default(). Queries are never
	// logged.
	Logger *slog.Logger

	udp, tcp *dns.Server
	pc       net.PacketConn
	ln       net.Listener
	sem      chan struct{}
	cache    *answerCache
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// Counters, for tests and tools.
	served, failed, overloaded, hits atomic.Int64
}

// Listen binds the UDP and TCP sockets.
func (s *Stub) Listen() error {
	if s.Client == nil {
		return errors.New("stub without a client")
	}
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("stub address %q: %w", s.Addr, err)
	}
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("listening on tcp %s: %w", s.Addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			_ = ln.Close()
			if port == "0" {
				continue // the TCP port is taken on UDP; try another
			}
			return fmt.Errorf("listening on udp %s: %w", s.Addr, err)
		}
		s.ln, s.pc = ln, pc
		break
	}
	if s.ln == nil {
		return fmt.Errorf("no port free on both tcp and udp for %s", s.Addr)
	}
	limit := s.MaxInFlight
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	s.sem = make(chan struct{}, limit)
	switch {
	case s.CacheSize == 0:
		s.cache = newAnswerCache(DefaultCacheSize)
	case s.CacheSize > 0:
		s.cache = newAnswerCache(s.CacheSize)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.udp = &dns.Server{PacketConn: s.pc, Handler: s, UDPSize: dns.DefaultMsgSize}
	s.tcp = &dns.Server{Listener: s.ln, Handler: s}
	return nil
}

// LocalAddr returns the bound "host:port" (UDP and TCP).
func (s *Stub) LocalAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves until Shutdown; it returns the first serving error, or nil.
func (s *Stub) Serve() error {
	errc := make(chan error, 2)
	go func() { errc <- s.udp.ActivateAndServe() }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	err1, err2 := <-errc, <-errc
	return errors.Join(err1, err2)
}

// Shutdown stops reading queries and waits for those in flight, or until ctx
// is done; then it cancels what remains.
func (s *Stub) Shutdown(ctx context.Context) error {
	err := errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	s.cancel()
	return err
}

func (s *Stub) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ServeDNS answers one query (dns.Handler).
func (s *Stub) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.wg.Add(1)
	defer s.wg.Done()
	resp := s.answer(r)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = max(int(o.UDPSize()), dns.MinMsgSize)
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.logger().Debug("writing dns answer", "err", err)
	}
}

func (s *Stub) answer(r *dns.Msg) *dns.Msg {
	s.served.Add(1)
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNotImplemented)
		return m
	}
	key := cacheKey{}
	if s.cache != nil {
		q := r.Question[0]
		do := false
		if o := r.IsEdns0(); o != nil {
			do = o.Do()
		}
		key = cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do}
		if m := s.cache.get(key, time.Now()); m != nil {
			s.hits.Add(1)
			m.Id = r.Id
			m.Question = r.Question // keep the client's letter case (0x20)
			return m
		}
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.overloaded.Add(1)
		return servfail(r)
	}
	defer func() { <-s.sem }()
	ctx, cancel := context.WithTimeout(s.ctx, orDefault(s.Timeout, DefaultStubTimeout))
	defer cancel()
	a, err := s.Client.Exchange(ctx, r)
	if err != nil {
		s.failed.Add(1)
		s.logger().Debug("odoh exchange failed", "err", err)
		return servfail(r)
	}
	if s.cache != nil && a.Rcode != dns.RcodeServerFailure && !a.Truncated {
		if ttl := cacheTTL(a, orDefault(s.MaxCacheTTL, DefaultMaxCacheTTL)); ttl > 0 {
			s.cache.put(key, a.Copy(), time.Now(), ttl)
		}
	}
	return a
}

func servfail(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// cacheTTL is the smallest TTL of the answer's records (OPT excluded), or
// for an answer without records the SOA minimum of the authority section.
func cacheTTL(m *dns.Msg, maxTTL time.Duration) time.Duration {
	ttl := uint32(maxTTL / time.Second)
	found := false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			t := h.Ttl
			if soa, ok := rr.(*dns.SOA); ok && len(m.Answer) == 0 {
				t = min(t, soa.Minttl)
			}
			ttl = min(ttl, t)
			found = true
		}
	}
	if !found {
		return 0
	}
	return time.Duration(ttl) * time.Second
}

type cacheKey struct {
	name          string
	qtype, qclass uint16
	do            bool
}

type cacheEntry struct {
	key    cacheKey
	msg    *dns.Msg
	stored time.Time
	expiry time.Time
}

// answerCache is a bounded LRU of answers.
type answerCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[cacheKey]*list.Element
}

func newAnswerCache(n int) *answerCache {
	return &answerCache{max: n, ll: list.New(), items: make(map[cacheKey]*list.Element, min(n, 1024))}
}

// get returns a copy of a live entry with TTLs decreased by its age.
func (c *answerCache) get(k cacheKey, now time.Time) *dns.Msg {
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expiry) {
		c.ll.Remove(el)
		delete(c.items, k)
		c.mu.Unlock()
		return nil
	}
	c.ll.MoveToFront(el)
	m := e.msg.Copy()
	c.mu.Unlock()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(age, h.Ttl)
			}
		}
	}
	return m
}

func (c *answerCache) put(k cacheKey, m *dns.Msg, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: k, msg: m, stored: now, expiry: now.Add(ttl)}
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

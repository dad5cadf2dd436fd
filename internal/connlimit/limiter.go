// Package connlimit caps the connections a server holds: overall, and per
// client address (an IPv4 address, or an IPv6 /64: one subscriber's
// prefix). One Limiter counts a server's TCP and QUIC connections
// together; [NewListener] applies it to a TCP listener (and reads PROXY
// protocol headers from trusted load balancers), [Limiter.QUICConnContext]
// and [Limiter.QUICVerifySourceAddress] apply it to a quic.Transport.
//
// A connection beyond a cap is refused before anything else is spent on
// it: a TCP connection is reset (RST, no TLS handshake), a QUIC Initial is
// answered with CONNECTION_REFUSED (no handshake). Connections already
// held keep their service.
package connlimit

import (
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Errors of Acquire, naming the cap that refused a connection.
var (
	ErrTooManyConns       = errors.New("connection cap reached")
	ErrTooManyClientConns = errors.New("per-client connection cap reached")
)

// Metrics receives each connection that a Limiter, or a Listener using
// it, refuses, by reason (one of the Refused… constants: never an
// address). Its method must be safe for concurrent use.
type Metrics interface {
	ConnRefused(reason string)
}

// Reasons a connection is refused, for Metrics.
const (
	// RefusedMaxConns: the overall cap was reached.
	RefusedMaxConns = "max_conns"
	// RefusedMaxConnsPerClient: the client's cap was reached.
	RefusedMaxConnsPerClient = "max_conns_per_client"
	// RefusedProxyHeaderUntrusted: a PROXY protocol header from a source
	// not trusted to send one.
	RefusedProxyHeaderUntrusted = "proxy_header_untrusted"
	// RefusedProxyHeaderInvalid: a trusted source's connection without a
	// valid PROXY protocol header in time.
	RefusedProxyHeaderInvalid = "proxy_header_invalid"
)

// RefusedReasons are every reason Metrics may be given.
var RefusedReasons = []string{RefusedMaxConns, RefusedMaxConnsPerClient, RefusedProxyHeaderUntrusted, RefusedProxyHeaderInvalid}

const shards = 32

// Limiter counts connections overall and per client. The zero value is
// not usable; create it with New. It is safe for concurrent use.
type Limiter struct {
	max, perClient int64
	metrics        Metrics
	total          atomic.Int64
	seed           maphash.Seed
	shards         [shards]shard

	refusedTotal, refusedClient atomic.Uint64
}

type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]int64
	_  [40]byte // keep shards on separate cache lines
}

// New returns a Limiter allowing maxConns connections in all and
// perClient from one client; a cap that is zero or negative is no cap.
func New(maxConns, perClient int) *Limiter { return NewWithMetrics(maxConns, perClient, nil) }

// NewWithMetrics is New with m, if not nil, receiving the refusals.
func NewWithMetrics(maxConns, perClient int, m Metrics) *Limiter {
	l := &Limiter{max: int64(maxConns), perClient: int64(perClient), metrics: m, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]int64)
	}
	return l
}

// ClientKey reduces an address to the key of its client: IPv4 (also
// IPv4-mapped IPv6) as is, IPv6 to its /64 prefix, zones dropped. The
// invalid address is one key of its own.
func ClientKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// AddrOf returns the IP address of a *net.TCPAddr, *net.UDPAddr or any
// address whose String is "host:port"; the invalid address if none.
func AddrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// Acquire takes a connection slot, overall and for client's key (see
// ClientKey), or reports the cap that refuses it. A nil error must be
// matched by one Release(client).
func (l *Limiter) Acquire(client netip.Addr) error {
	if !l.acquireTotal() {
		return ErrTooManyConns
	}
	if !l.acquireClient(ClientKey(client)) {
		l.releaseTotal()
		return ErrTooManyClientConns
	}
	return nil
}

// Release gives back the slot Acquire(client) took.
func (l *Limiter) Release(client netip.Addr) {
	l.releaseClient(ClientKey(client))
	l.releaseTotal()
}

func (l *Limiter) acquireTotal() bool {
	if n := l.total.Add(1); l.max > 0 && n > l.max {
		l.total.Add(-1)
		l.refusedTotal.Add(1)
		l.refused(RefusedMaxConns)
		return false
	}
	return true
}

func (l *Limiter) releaseTotal() { l.total.Add(-1) }

// refused reports a refusal to the metrics.
func (l *Limiter) refused(reason string) {
	if l.metrics != nil {
		l.metrics.ConnRefused(reason)
	}
}

func (l *Limiter) shard(key netip.Addr) *shard {
	b := key.As16()
	return &l.shards[maphash.Bytes(l.seed, b[:])%shards]
}

func (l *Limiter) acquireClient(key netip.Addr) bool {
	if l.perClient <= 0 {
		return true
	}
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.m[key]
	if n >= l.perClient {
		l.refusedClient.Add(1)
		l.refused(RefusedMaxConnsPerClient)
		return false
	}
	sh.m[key] = n + 1
	return true
}

func (l *Limiter) releaseClient(key netip.Addr) {
	if l.perClient <= 0 {
		return
	}
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.m[key] - 1; n > 0 {
		sh.m[key] = n
	} else {
		delete(sh.m, key)
	}
}

// clientConns returns the connections key holds.
func (l *Limiter) clientConns(key netip.Addr) int64 {
	sh := l.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[key]
}

// Stats are a Limiter's counts.
type Stats struct {
	// Open is the number of connections held.
	Open int64
	// Clients is the number of clients holding connections (0 without a
	// per-client cap, which keeps no per-client state).
	Clients int
	// RefusedTotal and RefusedClient count the connections refused by
	// the overall and by the per-client cap.
	RefusedTotal, RefusedClient uint64
}

// Stats returns the current counts.
func (l *Limiter) Stats() Stats {
	s := Stats{Open: l.total.Load(), RefusedTotal: l.refusedTotal.Load(), RefusedClient: l.refusedClient.Load()}
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		s.Clients += len(sh.m)
		sh.mu.Unlock()
	}
	return s
}

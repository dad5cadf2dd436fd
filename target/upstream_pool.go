package target

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
)

// Pooled upstream connections, as DNS forwarders keep them (CoreDNS's
// forward plugin, Unbound's outgoing TCP): a socket per query costs a
// socket, a connect, a poller registration and a close for two
// datagrams, more than the exchange itself.
const (
	// DefaultMaxIdleUDPSockets is the number of idle UDP sockets kept per
	// udp:// upstream: one per query in flight, so it bounds the
	// concurrency that runs without opening sockets.
	DefaultMaxIdleUDPSockets = 256
	// udpSocketLifetime is how long a UDP socket is reused. Queries keep
	// random IDs on every socket, and retiring sockets gives the pool new
	// source ports (RFC 5452 §9.2) and re-resolves an upstream's name.
	udpSocketLifetime = 10 * time.Second
	// wireBufSize holds any query a client can send and any UDP answer.
	wireBufSize = dns.MaxMsgSize
)

// errMismatch reports an answer that was not for the query sent; the
// transports drop such answers and go on waiting for the right one.
var errMismatch = errors.New("answer does not match the query")

// upConn is a pooled connection to an upstream.
type upConn struct {
	net.Conn
	expires time.Time     // zero: reused until it fails
	br      *bufio.Reader // stream connections only
}

// connPool keeps idle connections to one upstream. A connection goes back
// only after a clean exchange: one that failed or timed out is closed, so
// that a late answer never reaches the next query's read.
type connPool struct {
	idle   chan *upConn
	closed atomic.Bool
}

func newConnPool(n int) *connPool { return &connPool{idle: make(chan *upConn, n)} }

// get returns an idle connection that has not expired, or nil.
func (p *connPool) get(now time.Time) *upConn {
	for {
		select {
		case c := <-p.idle:
			if c.expires.IsZero() || now.Before(c.expires) {
				return c
			}
			c.Close()
		default:
			return nil
		}
	}
}

// put keeps c for reuse, or closes it if it expired, the pool is full or
// closed.
func (p *connPool) put(c *upConn, now time.Time) {
	if p.closed.Load() || !c.expires.IsZero() && !now.Before(c.expires) {
		c.Close()
		return
	}
	select {
	case p.idle <- c:
		// Close may have drained the pool just before: recheck.
		if p.closed.Load() {
			p.drain()
		}
	default:
		c.Close()
	}
}

// close closes the idle connections; those in use close when returned.
func (p *connPool) close() {
	p.closed.Store(true)
	p.drain()
}

func (p *connPool) drain() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// bufPool recycles wire buffers of wireBufSize bytes.
type bufPool struct{ p sync.Pool }

func (b *bufPool) get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, wireBufSize)
	return &buf
}

func (b *bufPool) put(v *[]byte) { b.p.Put(v) }

// randomID returns a query ID from the system's CSPRNG: an off-path
// attacker who cannot guess it cannot forge an answer (RFC 5452 §4.3).
func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return binary.BigEndian.Uint16(b[:])
}

// matchAnswer parses wire as the answer to q (see answers: its ID, opcode,
// QR bit and question must be q's). Anything else is errMismatch, and the
// caller drops it. An answer that cannot be relayed (see
// dnscache.CheckRepacksFrom, which has the bytes here to skip most of its
// work) is the upstream's failure, unless it is truncated and retryTC
// says the caller asks again over TCP instead.
func matchAnswer(wire []byte, q *dns.Msg, retryTC bool) (*dns.Msg, error) {
	if len(wire) < 12 || binary.BigEndian.Uint16(wire) != q.Id || wire[2]&0x80 == 0 {
		return nil, errMismatch
	}
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil || !answers(r, q) {
		return nil, errMismatch
	}
	if retryTC && r.Truncated {
		return r, nil
	}
	if err := dnscache.CheckRepacksFrom(r, wire); err != nil {
		return nil, err
	}
	return r, nil
}

// setDeadline bounds c's I/O by deadline and by ctx's cancellation (which
// moves the deadline to the past). Call the returned stop when done.
func setDeadline(ctx context.Context, c net.Conn, deadline time.Time) (stop func() bool, err error) {
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) }), nil
}

// upstreamQuery is q as it goes upstream: a random ID and, of its EDNS
// options, ECS (a hint the client chose to give, RFC 9230 §1) but not its
// cookie; the target never adds options of its own. q is not modified: the
// copy shares q's records but for the OPT, which packing writes to.
func upstreamQuery(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	*m = *q
	m.Id = randomID()
	m.Compress = false
	if opt := q.IsEdns0(); opt != nil {
		o := &dns.OPT{Hdr: opt.Hdr, Option: append([]dns.EDNS0(nil), opt.Option...)}
		dnscache.DropCookies(o)
		m.Extra = make([]dns.RR, len(q.Extra))
		for i, rr := range q.Extra {
			if rr == dns.RR(opt) {
				rr = o
			}
			m.Extra[i] = rr
		}
	}
	return m
}

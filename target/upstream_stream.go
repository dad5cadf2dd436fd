package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/miekg/dns"
)

// streamUpstream asks over TCP or TLS on persistent connections, one query
// at a time per connection (RFC 7766 §6.2.1), keeping up to MaxIdleConns
// idle connections. A reused connection the server closed while it was
// idle is retried once on a fresh one. Answers that do not match the query
// (a late answer to an abandoned query) are dropped and counted.
type streamUpstream struct {
	addr     string
	tls      *tls.Config // nil: plain TCP
	dialer   *net.Dialer
	pool     *connPool
	bufs     *bufPool
	mismatch func()
}

func newStreamUpstream(addr string, t *tls.Config, o UpstreamsConfig, bufs *bufPool, mismatch func()) *streamUpstream {
	return &streamUpstream{addr: addr, tls: t, dialer: o.Dialer, pool: newConnPool(o.MaxIdleConns), bufs: bufs, mismatch: mismatch}
}

func (s *streamUpstream) dial(ctx context.Context) (*upConn, error) {
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
	return &upConn{Conn: c, br: bufio.NewReaderSize(c, 2048)}, nil
}

func (s *streamUpstream) exchange(ctx context.Context, deadline time.Time, q *dns.Msg) (*dns.Msg, error) {
	// Dialing (and the TLS handshake) is bounded by the deadline too.
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	// Pack after the two-byte length prefix (RFC 1035 §4.2.2).
	wire, err := q.PackBuffer((*buf)[2:])
	if err != nil {
		return nil, err
	}
	if len(wire) > wireBufSize-2 {
		return nil, errors.New("query too large for TCP")
	}
	if &wire[0] != &(*buf)[2] { // PackBuffer needed a larger buffer
		wire = append(make([]byte, 2, 2+len(wire)), wire...)
	} else {
		wire = (*buf)[:2+len(wire)]
	}
	binary.BigEndian.PutUint16(wire, uint16(len(wire)-2))

	for attempt := 0; ; attempt++ {
		c := s.pool.get(time.Now())
		reused := c != nil
		if c == nil {
			if c, err = s.dial(ctx); err != nil {
				return nil, err
			}
		}
		r, err := s.roundTrip(ctx, deadline, c, q, wire)
		if err == nil {
			s.pool.put(c, time.Now())
			return r, nil
		}
		c.Close()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// roundTrip writes the framed query and reads answers until one matches
// q. It reads into a buffer of its own: wire is sent again on a retry.
func (s *streamUpstream) roundTrip(ctx context.Context, deadline time.Time, c *upConn, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	buf := s.bufs.get()
	defer s.bufs.put(buf)
	stop, err := setDeadline(ctx, c, deadline)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	for {
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c.br, (*buf)[:n]); err != nil {
			return nil, err
		}
		r, err := matchAnswer((*buf)[:n], q, false)
		if errors.Is(err, errMismatch) {
			s.mismatch()
			continue
		}
		return r, err
	}
}

func (s *streamUpstream) close() { s.pool.close() }

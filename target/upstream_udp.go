package target

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
)

// udpUpstream asks over UDP on pooled connected sockets, one query at a
// time per socket, and retries over TCP when the answer is truncated. A
// connected socket only hears from the upstream's address; on it, answers
// whose ID or question is not the query's (late ones, forged ones) are
// dropped, counted by mismatch, and the read goes on until the deadline.
type udpUpstream struct {
	addr     string
	dialer   *net.Dialer
	pool     *connPool
	bufs     *bufPool
	tcp      *streamUpstream
	mismatch func() // counts a dropped answer
}

func newUDPUpstream(addr string, o UpstreamsConfig, bufs *bufPool, mismatch func()) *udpUpstream {
	return &udpUpstream{
		addr: addr, dialer: o.Dialer, bufs: bufs, mismatch: mismatch,
		pool: newConnPool(DefaultMaxIdleUDPSockets),
		tcp:  newStreamUpstream(addr, nil, o, bufs, mismatch),
	}
}

func (u *udpUpstream) exchange(ctx context.Context, deadline time.Time, q *dns.Msg) (*dns.Msg, error) {
	c := u.pool.get(time.Now())
	if c == nil {
		var err error
		if c, err = u.dial(ctx, deadline); err != nil {
			return nil, err
		}
	}
	r, err := u.roundTrip(ctx, deadline, c, q)
	if err != nil {
		c.Close()
		return nil, err
	}
	u.pool.put(c, time.Now())
	if r.Truncated {
		return u.tcp.exchange(ctx, deadline, q)
	}
	return r, nil
}

// dial opens a socket; resolving the upstream's name counts against the
// attempt's deadline.
func (u *udpUpstream) dial(ctx context.Context, deadline time.Time) (*upConn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := u.dialer.DialContext(ctx, "udp", u.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{Conn: nc, expires: time.Now().Add(udpSocketLifetime)}, nil
}

func (u *udpUpstream) roundTrip(ctx context.Context, deadline time.Time, c *upConn, q *dns.Msg) (*dns.Msg, error) {
	buf := u.bufs.get()
	defer u.bufs.put(buf)
	wire, err := q.PackBuffer(*buf)
	if err != nil {
		return nil, err
	}
	stop, err := setDeadline(ctx, c, deadline)
	if err != nil {
		return nil, err
	}
	defer stop()
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	for {
		n, err := c.Read(*buf)
		if err != nil {
			return nil, err
		}
		r, err := matchAnswer((*buf)[:n], q, true)
		if errors.Is(err, errMismatch) {
			u.mismatch()
			continue
		}
		return r, err
	}
}

func (u *udpUpstream) close() {
	u.pool.close()
	u.tcp.close()
}

package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/stack"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The stub's UDP server. miekg/dns's starts a goroutine per datagram,
// whose stack then grows (copying itself) as each query descends through
// HPKE and the HTTP client: a few microseconds a query, measurable beside
// the stub's whole cost. Here a pool of workers reads the socket itself:
// each worker reads a query, answers it and reads the next, keeping its
// grown stack and its buffers, with no hand-off between goroutines. The
// pool grows while every worker is busy, up to MaxInFlight plus
// udpSpareWorkers (so that queries beyond MaxInFlight still get their
// SERVFAIL at once; beyond that many queries being answered, datagrams wait
// in the socket's buffer), and shrinks when many workers have been idle
// for a while (udpShrinkAfter): a pool that shrank at the first idle
// moment would, under a steady load, start a new worker, with a new stack
// to grow, for nearly every other query. What it
// accepts is what miekg/dns's server accepts (see answerDatagram); it
// answers from the address each query was sent to.

const (
	// udpSpareWorkers is how many idle workers a worker that finished a
	// query tolerates before it exits, beyond an eighth of the pool.
	udpSpareWorkers = 8
	// udpShrinkAfter is how long a pool must have had a reader waiting
	// all along (no query found every worker busy) before its surplus
	// workers exit.
	udpShrinkAfter = time.Second
	// udpReadSize bounds a query datagram, as miekg/dns's server does
	// (its UDPSize).
	udpReadSize = dns.DefaultMsgSize
)

// udpServer serves the stub's packet socket with its workers.
type udpServer struct {
	s    *Stub
	conn *net.UDPConn
	max  int32

	oobSize int
	idle    atomic.Int32 // workers waiting in a read
	workers atomic.Int32
	// start is the server's clock origin, and short the time since start
	// when a worker last read a query with no other worker waiting in a
	// read (the moment the pool grows).
	start    time.Time
	short    atomic.Int64
	wg       sync.WaitGroup
	stopping atomic.Bool

	errOnce sync.Once
	err     error // the read error that stopped the workers
}

func newUDPServer(s *Stub, pc net.PacketConn, maxWorkers int) (*udpServer, error) {
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, errors.New("stub: the packet socket is not UDP")
	}
	// Ask for each datagram's destination address, to answer from it
	// (a wildcard bind has several); either family may fail, not both.
	err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	if err6 != nil && err4 != nil {
		return nil, err4
	}
	return &udpServer{s: s, conn: conn, max: int32(min(maxWorkers, math.MaxInt32)), oobSize: udpOOBSize(), start: time.Now()}, nil
}

// serve starts the first worker and returns once every worker has
// stopped: nil after shutdown, the read error that stopped them otherwise.
func (u *udpServer) serve(started func()) error {
	u.spawn()
	started()
	u.wg.Wait()
	return u.err
}

// stop makes the workers return once their query is answered.
func (u *udpServer) stop() {
	u.stopping.Store(true)
	_ = u.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the readers
}

// shutdown stops the workers and waits for them until ctx is done.
func (u *udpServer) shutdown(ctx context.Context) error {
	u.stop()
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u *udpServer) spawn() {
	u.workers.Add(1)
	u.wg.Add(1)
	go u.work()
}

func (u *udpServer) work() {
	defer u.wg.Done()
	defer u.workers.Add(-1)
	buf := make([]byte, udpReadSize)
	var out []byte
	var src replySource
	oob := make([]byte, u.oobSize)
	for {
		u.idle.Add(1)
		n, oobn, _, raddr, err := u.conn.ReadMsgUDPAddrPort(buf, oob)
		idle := u.idle.Add(-1)
		if err != nil {
			if u.stopping.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			u.errOnce.Do(func() { u.err = err; u.stop() })
			return
		}
		if idle == 0 { // nobody else is reading
			u.short.Store(int64(time.Since(u.start)))
			if u.workers.Load() < u.max {
				u.spawn()
			}
		}
		// The GC shrinks an idle worker's stack; regrow it here, two
		// frames deep, rather than deep in sealing the query.
		stack.Grow()
		if o := u.s.answerDatagram(buf[:n], out); o != nil {
			out = o
			if _, _, err := u.conn.WriteMsgUDPAddrPort(out, src.from(oob[:oobn]), raddr); err != nil {
				u.s.logger.Debug("writing dns answer", "err", err)
			}
		}
		if u.surplus() {
			return
		}
	}
}

// surplus reports whether a worker that answered its query should exit:
// more than udpSpareWorkers and an eighth of the pool are idle, and have
// been, as far as reads tell, for udpShrinkAfter.
func (u *udpServer) surplus() bool {
	return u.idle.Load() > udpSpareWorkers+u.workers.Load()/8 &&
		time.Since(u.start)-time.Duration(u.short.Load()) > udpShrinkAfter
}

// udpOOBSize is the room a datagram's control message needs for its
// destination address and interface, in either family.
func udpOOBSize() int {
	return max(len(ipv4.NewControlMessage(ipv4.FlagDst|ipv4.FlagInterface)),
		len(ipv6.NewControlMessage(ipv6.FlagDst|ipv6.FlagInterface)))
}

// replySource is one worker's control message for answering from the
// address a query was sent to, made again only when a query's control
// message differs from the last one's: a stub's queries nearly all reach
// the same address, and parsing and building control messages allocates.
type replySource struct {
	got   []byte // the control message received last
	reply []byte // the one to answer it with; nil: the socket's own address
}

// from returns the control message for answering a query that came with
// control message oob: its destination address as the source.
func (r *replySource) from(oob []byte) []byte {
	if r.got != nil && bytes.Equal(oob, r.got) {
		return r.reply
	}
	r.got = append(r.got[:0], oob...)
	r.reply = nil
	// IPv6 first: on a dual-stack socket an IPv4 query's destination
	// comes as an IPv4-mapped address, answered with IPv4's message.
	var dst net.IP
	if cm := new(ipv6.ControlMessage); cm.Parse(oob) == nil && cm.Dst != nil {
		dst = cm.Dst
	} else if cm := new(ipv4.ControlMessage); cm.Parse(oob) == nil && cm.Dst != nil {
		dst = cm.Dst
	}
	switch {
	case dst == nil:
	case dst.To4() == nil:
		r.reply = (&ipv6.ControlMessage{Src: dst}).Marshal()
	default:
		r.reply = (&ipv4.ControlMessage{Src: dst}).Marshal()
	}
	return r.reply
}

// answerDatagram returns the packed answer to the query datagram b (in
// out's storage when it fits), or nil for none. What it accepts is what
// miekg/dns's server accepts (DefaultMsgAcceptFunc); a datagram shorter
// than a header gets no answer, a rejected or malformed one a header-only
// FORMERR or NOTIMP; an answer is truncated to the client's UDP size.
func (s *Stub) answerDatagram(b, out []byte) []byte {
	if len(b) < 12 {
		return nil // too short for a header: any reply could amplify
	}
	h := dns.Header{
		Id:      binary.BigEndian.Uint16(b),
		Bits:    binary.BigEndian.Uint16(b[2:]),
		Qdcount: binary.BigEndian.Uint16(b[4:]),
		Ancount: binary.BigEndian.Uint16(b[6:]),
		Nscount: binary.BigEndian.Uint16(b[8:]),
		Arcount: binary.BigEndian.Uint16(b[10:]),
	}
	var resp *dns.Msg
	switch action := dns.DefaultMsgAcceptFunc(h); action {
	case dns.MsgIgnore:
		return nil
	case dns.MsgAccept:
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			resp = rejection(h, dns.MsgReject)
			break
		}
		s.wg.Add(1)
		defer s.wg.Done()
		resp = s.answer(r)
		resp.Truncate(udpSize(r))
	default:
		resp = rejection(h, action)
	}
	out, err := resp.PackBuffer(out[:cap(out)])
	if err != nil {
		s.logger.Debug("packing dns answer", "err", err)
		return nil
	}
	return out
}

// rejection is miekg/dns's server's answer to a query it does not accept:
// the header alone, FORMERR, or NOTIMP with the query's opcode.
func rejection(h dns.Header, action dns.MsgAcceptAction) *dns.Msg {
	req := new(dns.Msg)
	req.Id = h.Id
	req.Opcode = int(h.Bits>>11) & 0xF
	req.RecursionDesired = h.Bits&(1<<8) != 0
	req.CheckingDisabled = h.Bits&(1<<4) != 0
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	return req
}

// udpSize is the size a UDP answer to r may take (RFC 6891 §6.2.5).
func udpSize(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		return max(int(o.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

package connlimit

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"fe80::1%eth0":         "fe80::",
	} {
		if got := ClientKey(netip.MustParseAddr(in)); got != netip.MustParseAddr(want) {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// refusals records ConnRefused calls by reason.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) ConnRefused(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[string]int)
	}
	r.n[reason]++
}

// check fails unless the counts are want (reasons absent: zero).
func (r *refusals) check(t *testing.T, want map[string]int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, reason := range RefusedReasons {
		if r.n[reason] != want[reason] {
			t.Errorf("refused for %s: %d, want %d (all: %v)", reason, r.n[reason], want[reason], r.n)
		}
	}
}

func TestLimiter(t *testing.T) {
	m := &refusals{}
	l := NewWithMetrics(3, 2, m)
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2") // one /64
	c := netip.MustParseAddr("192.0.2.1")
	if l.Acquire(a) != nil || l.Acquire(b) != nil {
		t.Fatal("first two refused")
	}
	if err := l.Acquire(a); !errors.Is(err, ErrTooManyClientConns) {
		t.Errorf("third from one /64: %v", err)
	}
	if l.Acquire(c) != nil {
		t.Fatal("another client refused")
	}
	if err := l.Acquire(netip.MustParseAddr("192.0.2.2")); !errors.Is(err, ErrTooManyConns) {
		t.Errorf("fourth overall: %v", err)
	}
	l.Release(b)
	if l.Acquire(a) != nil {
		t.Error("slot not given back")
	}
	if s := l.Stats(); s.Open != 3 || s.Clients != 2 || s.RefusedClient != 1 || s.RefusedTotal != 1 {
		t.Errorf("stats %+v", s)
	}
	m.check(t, map[string]int{RefusedMaxConns: 1, RefusedMaxConnsPerClient: 1})
}

// listen returns a Listener on 127.0.0.1 and a channel of its accepted
// connections (or errors).
func listen(t *testing.T, cfg ListenerConfig) (*Listener, chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	l := NewListener(raw, cfg)
	t.Cleanup(func() { l.Close() })
	conns := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	return l, conns
}

func dialFrom(t *testing.T, l net.Listener, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if errors.Is(err, syscall.ECONNRESET) {
		// Refused so fast that connect(2) saw the reset.
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func accepted(t *testing.T, conns chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("nothing accepted")
		return nil
	}
}

func notAccepted(t *testing.T, conns chan net.Conn, peer net.Conn) {
	t.Helper()
	select {
	case c := <-conns:
		t.Fatalf("connection from %v accepted", c.RemoteAddr())
	case <-time.After(200 * time.Millisecond):
	}
	if peer == nil {
		return
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Error("refused connection still open")
	}
}

func v2Header(src netip.AddrPort) []byte {
	b := []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 12}
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, 192, 0, 2, 99)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, 443)
}

func TestListenerPerClientCap(t *testing.T) {
	l, conns := listen(t, ListenerConfig{Limiter: New(0, 1)})
	dialFrom(t, l, "127.0.0.1")
	c1 := accepted(t, conns)
	notAccepted(t, conns, dialFrom(t, l, "127.0.0.1"))
	dialFrom(t, l, "127.0.0.2")
	accepted(t, conns)
	c1.Close()
	c1.Close() // once only
	dialFrom(t, l, "127.0.0.1")
	accepted(t, conns)
	if s := l.lim.Stats(); s.Open != 2 {
		t.Errorf("open %d, want 2", s.Open)
	}
}

// TestListenerRefusesUntrustedHeader: without trust, a PROXY header is
// an error on the first read, not a client address.
func TestListenerRefusesUntrustedHeader(t *testing.T) {
	m := &refusals{}
	for _, trusted := range [][]netip.Prefix{nil, {netip.MustParsePrefix("127.0.0.2/32")}} {
		l, conns := listen(t, ListenerConfig{Limiter: NewWithMetrics(0, 0, m), ProxyFrom: trusted})
		peer := dialFrom(t, l, "127.0.0.1")
		peer.Write(append([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 443\r\n"), "hello"...))
		c := accepted(t, conns)
		if _, err := c.Read(make([]byte, 64)); !errors.Is(err, ErrProxyHeaderRefused) {
			t.Errorf("trusted %v: read %v, want refusal", trusted, err)
		}
		if c.RemoteAddr().String() == "192.0.2.1:1" {
			t.Error("the header's address was believed")
		}
	}
	m.check(t, map[string]int{RefusedProxyHeaderUntrusted: 2})
}

// TestListenerTrustedHeader: from a trusted balancer the header's client
// is the address, counted by the per-client cap, and the bytes after the
// header are the payload.
func TestListenerTrustedHeader(t *testing.T) {
	m := &refusals{}
	l, conns := listen(t, ListenerConfig{Limiter: NewWithMetrics(0, 1, m), ProxyFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	client := netip.MustParseAddrPort("198.51.100.7:5555")
	peer := dialFrom(t, l, "127.0.0.1")
	peer.Write(append(v2Header(client), "payload"...))
	c := accepted(t, conns)
	if c.RemoteAddr().String() != client.String() {
		t.Errorf("RemoteAddr %v, want %v", c.RemoteAddr(), client)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "payload" {
		t.Errorf("payload %q %v", b, err)
	}
	// The same client through the balancer again: over its cap.
	again := dialFrom(t, l, "127.0.0.1")
	again.Write(v2Header(client))
	notAccepted(t, conns, again)
	// Another client through the same balancer: fine.
	other := dialFrom(t, l, "127.0.0.1")
	other.Write(v2Header(netip.MustParseAddrPort("198.51.100.8:1")))
	accepted(t, conns)
	// No header, or garbage, from the balancer: closed.
	bad := dialFrom(t, l, "127.0.0.1")
	bad.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	notAccepted(t, conns, bad)
	m.check(t, map[string]int{RefusedMaxConnsPerClient: 1, RefusedProxyHeaderInvalid: 1})
}

// TestListenerHeaderTimeout: a balancer connection that sends nothing is
// closed after HeaderTimeout and never holds up Accept.
func TestListenerHeaderTimeout(t *testing.T) {
	l, conns := listen(t, ListenerConfig{ProxyFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, HeaderTimeout: 200 * time.Millisecond})
	silent := dialFrom(t, l, "127.0.0.1")
	direct := dialFrom(t, l, "127.0.0.2") // untrusted: no header needed
	accepted(t, conns)
	_ = direct
	notAccepted(t, conns, silent)
}

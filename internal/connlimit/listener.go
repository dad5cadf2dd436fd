package connlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/odohd/odoh/internal/proxyproto"
)

// DefaultHeaderTimeout bounds reading a PROXY protocol header.
const DefaultHeaderTimeout = 5 * time.Second

// ErrProxyHeaderRefused is the error of a connection that starts with a
// PROXY protocol header from a source not trusted to send one.
var ErrProxyHeaderRefused = errors.New("PROXY protocol header from an untrusted source refused (trust its address with -proxy-protocol-from)")

// ListenerConfig configures NewListener.
type ListenerConfig struct {
	// Limiter caps the connections; nil caps none.
	Limiter *Limiter
	// ProxyFrom are the sources (load balancers) that must start every
	// connection with a PROXY protocol v1 or v2 header: the client it
	// names is the one counted (and the connection's RemoteAddr). A
	// connection from elsewhere that starts with a PROXY header is
	// refused, with or without ProxyFrom.
	ProxyFrom []netip.Prefix
	// HeaderTimeout bounds reading a PROXY header; zero means
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// Logger gets a warning, at most once a minute, when PROXY headers
	// are refused or malformed (a misconfigured balancer); never an
	// address. Nil means slog.Default().
	Logger *slog.Logger
}

// Listener is a net.Listener that applies a Limiter (and the PROXY
// protocol) to the connections of another. Create it with NewListener.
type Listener struct {
	net.Listener
	lim     *Limiter
	trusted []netip.Prefix
	timeout time.Duration
	log     *slog.Logger
	warned  atomic.Int64 // unix seconds of the last warning

	// With trusted sources, a goroutine accepts and every trusted
	// connection reads its header in its own goroutine, so that a slow
	// balancer connection never holds up Accept.
	start  sync.Once
	ready  chan net.Conn
	errc   chan error
	closed chan struct{}
	close  sync.Once
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	l := &Listener{
		Listener: ln,
		lim:      cfg.Limiter,
		trusted:  cfg.ProxyFrom,
		timeout:  cfg.HeaderTimeout,
		log:      cfg.Logger,
		ready:    make(chan net.Conn),
		errc:     make(chan error, 1),
		closed:   make(chan struct{}),
	}
	if l.lim == nil {
		l.lim = New(0, 0)
	}
	if l.timeout <= 0 {
		l.timeout = DefaultHeaderTimeout
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

// Accept returns the next connection within the caps. Connections beyond
// them are reset at once and never returned.
func (l *Listener) Accept() (net.Conn, error) {
	if len(l.trusted) == 0 {
		for {
			c, err := l.Listener.Accept()
			if err != nil {
				return nil, err
			}
			if lc := l.admit(c); lc != nil {
				return lc, nil
			}
		}
	}
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close closes the listener; connections it returned stay open.
func (l *Listener) Close() error {
	l.close.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// admit applies the caps to a connection from an untrusted source.
func (l *Listener) admit(c net.Conn) *conn {
	src := AddrOf(c.RemoteAddr())
	if err := l.lim.Acquire(src); err != nil {
		reset(c)
		return nil
	}
	return &conn{Conn: c, l: l, client: src, sniff: true}
}

func (l *Listener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// As net/http does: EMFILE and the like pass.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-l.closed:
					return
				}
			}
			select {
			case l.errc <- err:
			case <-l.closed:
			}
			return
		}
		backoff = 0
		if !l.isTrusted(AddrOf(c.RemoteAddr())) {
			if lc := l.admit(c); lc != nil {
				l.hand(lc)
			}
			continue
		}
		// The balancer's connection is counted against the overall cap
		// now, against its client's once the header names it.
		if !l.lim.acquireTotal() {
			reset(c)
			continue
		}
		go l.readHeader(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// hand gives an admitted connection to Accept, or closes it if the
// listener closes first.
func (l *Listener) hand(c *conn) {
	select {
	case l.ready <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// readHeader reads the PROXY header of a trusted source's connection,
// whose overall slot is taken, and hands the connection on as coming
// from the client the header names.
func (l *Listener) readHeader(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	h, rest, err := proxyproto.Read(c, proxyproto.DefaultMaxV2)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		l.warn("PROXY protocol header from a trusted source unreadable; connection closed", headerError(err))
		l.lim.refused(RefusedProxyHeaderInvalid)
		l.lim.releaseTotal()
		reset(c)
		return
	}
	client := AddrOf(c.RemoteAddr())
	var remote net.Addr
	if !h.Local {
		client = h.Source.Addr()
		remote = net.TCPAddrFromAddrPort(h.Source)
	}
	if !l.lim.acquireClient(ClientKey(client)) {
		l.lim.releaseTotal()
		reset(c)
		return
	}
	l.hand(&conn{Conn: c, l: l, client: client, remote: remote, pending: rest})
}

// headerError is err without the addresses a network error names.
func headerError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, proxyproto.ErrNoHeader), errors.Is(err, proxyproto.ErrMalformed):
		return err
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("no header within the header timeout")
	}
	return errors.New("connection failed while reading the header")
}

func (l *Listener) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// warn logs msg at most once a minute: enough to diagnose a
// misconfigured balancer, not a log line per connection an attacker
// opens. It never names an address.
func (l *Listener) warn(msg string, err error) {
	now := time.Now().Unix()
	last := l.warned.Load()
	if now-last < 60 || !l.warned.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn(msg, "err", err)
}

// reset closes c with a TCP RST: no FIN handshake, no TIME_WAIT here.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// conn is an admitted connection: it holds its slots until closed.
type conn struct {
	net.Conn
	l       *Listener
	client  netip.Addr
	remote  net.Addr // the PROXY header's client, or nil
	pending []byte   // read with the header, not yet returned
	sniff   bool     // refuse a PROXY header on the first read
	closed  atomic.Bool
}

func (c *conn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(b)
	if c.sniff && n > 0 {
		c.sniff = false
		if proxyproto.HasSignature(b[:n]) {
			c.l.warn("PROXY protocol header refused", ErrProxyHeaderRefused)
			c.l.lim.refused(RefusedProxyHeaderUntrusted)
			_ = c.Close()
			return 0, ErrProxyHeaderRefused
		}
	}
	return n, err
}

// RemoteAddr is the client the PROXY header named, or the peer's address.
func (c *conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// Close closes the connection and gives back its slots, once.
func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.lim.Release(c.client)
	}
	return err
}

// String describes the listener for logs (never a client address).
func (l *Listener) String() string {
	return fmt.Sprintf("connlimit listener on %s", l.Addr())
}

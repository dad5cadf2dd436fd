// Package httpserve serves one http.Handler over HTTPS with HTTP/2 (and
// HTTP/1.1) on TCP and HTTP/3 on UDP at the same address.
//
// Two explicit servers share the port: a net/http server on TCP (ALPN
// "h2", "http/1.1") and a quic-go http3 server on UDP (ALPN "h3"). quic-go's
// ListenAndServe helpers cannot drain, so [Server.Shutdown] shuts both down
// itself: TCP with http.Server.Shutdown, UDP with a GOAWAY and a wait for
// running requests, after which the UDP socket is closed. Responses over TCP
// advertise HTTP/3 with
//
//	Alt-Svc: h3=":PORT"; ma=86400
//
// unless DisableHTTP3 is set.
//
// Lifecycle: [Server.Listen] binds both sockets (port 0 picks a port free on
// both TCP and UDP), [Server.Serve] blocks serving them until its context is
// cancelled, then drains (for at most DrainTimeout) and returns nil;
// [Server.Shutdown] drains for as long as its own context allows, and
// [Server.Close] stops at once. Every zero limit takes the default named
// below.
//
//	srv := &httpserve.Server{Addr: ":443", Handler: h, TLSConfig: reloader.TLSConfig(), Logger: log}
//	if err := srv.Listen(); err != nil { ... }
//	err := srv.Serve(ctx) // returns once ctx is cancelled and requests finished
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/connlimit"
	"github.com/odohd/odoh/internal/dualport"
	"github.com/odohd/odoh/internal/writebatch"
)

// Defaults for the zero values of Server's limits.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included
	// (an ODoH query is at most 64 KiB); a body that misses it closes its
	// HTTP/1.1 or HTTP/2 connection.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the handling and writing of a response.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultDrainTimeout bounds the drain of Serve once its context is
	// cancelled: requests still running then are cut.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultIdleTimeout closes connections idle for this long.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes bounds the size of a request's headers.
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultMaxConcurrentStreams bounds the concurrent requests on one
	// HTTP/2 or HTTP/3 connection.
	DefaultMaxConcurrentStreams = 256
	// QUICStreamReceiveWindow and QUICConnReceiveWindow are the HTTP/3
	// flow-control windows, fixed (quic-go's defaults start at 512 and
	// 768 KiB and grow to 6 and 15 MiB). A window bounds what a client
	// can make us hold unread, and QUIC keeps data that arrives past a
	// gap until the gap is filled: with the defaults, 4096 connections
	// could hold 3 GiB that no handler can read. 96 KiB holds a stream's
	// largest request at once (16 KiB of headers and odoh.MaxQuerySize,
	// 65,604 bytes); 128 KiB per connection caps that memory at 512 MiB
	// over DefaultMaxConns. Larger bodies still pass, as they are read.
	QUICStreamReceiveWindow = 96 << 10
	QUICConnReceiveWindow   = 128 << 10
	// DefaultResetBudget is how many more reset or refused streams than
	// answered ones a connection may have before it is closed: four times
	// DefaultMaxConcurrentStreams, as net/http's own cap on streams reset
	// before their handler started.
	DefaultResetBudget = 4 * DefaultMaxConcurrentStreams
	// DefaultMaxConns and DefaultMaxConnsPerClient cap the connections
	// held (TCP and QUIC together), DefaultMaxRequests the requests in
	// progress over all of them. Measured with bench/conncost.sh, an idle
	// HTTP/3 connection costs a daemon about 96 KiB of RSS (HTTP/2:
	// 67 KiB) and a request whose 64 KiB body is still arriving about
	// 92 KiB: 4096 connections and 2048 such requests hold about 570 MiB,
	// under the runtime's 800 MiB soft limit (internal/cli) and so under
	// 1 GiB whatever clients do (bench/ceiling.sh fills every cap at
	// once, slowloris and rapid reset included: a peak of about 700 MiB).
	// 64 connections per client leave the overall cap to 64 addresses at
	// least.
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerClient = 64
	DefaultMaxRequests       = 2048
	// AltSvcMaxAge is the ma= lifetime, in seconds, of the Alt-Svc header.
	AltSvcMaxAge = 86400
)

// Metrics receives what a Server reports of its connections, by reason
// (connlimit's Refused… and this package's Closed… constants: never an
// address). Methods must be safe for concurrent use.
type Metrics interface {
	// ConnRefused counts a connection refused before TLS.
	ConnRefused(reason string)
	// ConnClosed counts a connection closed by a rule.
	ConnClosed(reason string)
}

// Server serves Handler over HTTP/2 on TCP and HTTP/3 on UDP at Addr.
// Set its fields before Listen and do not change them afterwards.
type Server struct {
	// Addr is the "host:port" to listen on; port 0 picks a free port.
	// An empty Addr means ":443".
	Addr string
	// Handler serves every request, on both protocols.
	Handler http.Handler
	// TLSConfig must supply certificates (Certificates, GetCertificate or
	// GetConfigForClient). It is cloned; NextProtos is set by the server.
	// A zero MinVersion becomes TLS 1.2 (HTTP/3 always uses TLS 1.3).
	TLSConfig *tls.Config
	// Logger receives serving errors; nil means slog.Default().
	Logger *slog.Logger
	// DisableHTTP3 serves TCP only and sends no Alt-Svc header.
	DisableHTTP3 bool

	// ReadHeaderTimeout bounds reading request headers (TCP) and the
	// QUIC handshake (UDP). Zero means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a request, body included, on both
	// protocols. Zero means DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response on both protocols.
	// Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdleTimeout closes idle connections on both protocols.
	// Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// DrainTimeout bounds how long Serve, once its context is cancelled,
	// waits for running requests before it cuts them. Zero means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// MaxHeaderBytes bounds request headers on both protocols.
	// Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds concurrent requests per connection on
	// both protocols. Zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxConns and MaxConnsPerClient cap the connections held, TCP and
	// QUIC together, in all and from one client address (IPv6: /64);
	// beyond them new connections are refused before TLS (see
	// internal/connlimit). Zero means DefaultMaxConns and
	// DefaultMaxConnsPerClient, negative no cap.
	MaxConns, MaxConnsPerClient int
	// MaxRequests caps the requests being handled at once, over every
	// connection and both protocols; more are answered 503 at once.
	// Zero means DefaultMaxRequests, negative no cap.
	MaxRequests int
	// ResetBudget is how many more streams a connection may have reset
	// by its client or refused by the handler (CountRefused) than
	// answered, before it is closed. Zero means DefaultResetBudget,
	// negative no budget.
	ResetBudget int
	// Metrics, if not nil, receives the connections refused by the caps
	// and the PROXY protocol rules, and those closed by the reset budget
	// and the body deadline.
	Metrics Metrics
	// ProxyProtocolFrom are the load balancers trusted to start each TCP
	// connection with a PROXY protocol header naming the client (whose
	// address is then the request's RemoteAddr and the one the caps
	// count). From anywhere else a PROXY header is refused. HTTP/3 (UDP)
	// has no PROXY protocol.
	ProxyProtocolFrom []netip.Prefix

	mu    sync.Mutex
	tcp   net.Listener
	udp   net.PacketConn
	lim   *connlimit.Limiter
	quicT *quic.Transport
	quicL *quic.Listener
	h1    *http.Server
	h3    *http3.Server
	shut  bool
}

// Listen binds the TCP socket and, unless DisableHTTP3 is set, the UDP
// socket on the same port (with port 0, one free on both: see
// internal/dualport).
func (s *Server) Listen() error {
	if err := s.check(); err != nil {
		return err
	}
	addr := s.Addr
	if addr == "" {
		addr = ":443"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("httpserve: parsing address %q: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp != nil {
		return errors.New("httpserve: already listening")
	}
	var tcp net.Listener
	var udp net.PacketConn
	if s.DisableHTTP3 {
		if tcp, err = net.Listen("tcp", net.JoinHostPort(host, port)); err != nil {
			err = fmt.Errorf("listening on tcp: %w", err)
		}
	} else {
		tcp, udp, err = dualport.Listen(host, port)
	}
	if err != nil {
		return fmt.Errorf("httpserve: %w", err)
	}
	s.tcp, s.udp = tcp, udp
	return s.setup()
}

func (s *Server) check() error {
	if s.Handler == nil {
		return errors.New("httpserve: no handler")
	}
	c := s.TLSConfig
	if c == nil || (len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil) {
		return errors.New("httpserve: TLS config without certificates")
	}
	return nil
}

// setup builds both servers; s.mu is held.
func (s *Server) setup() error {
	logger := s.logger()
	port := s.tcp.Addr().(*net.TCPAddr).Port
	s.lim = connlimit.NewWithMetrics(orCap(s.MaxConns, DefaultMaxConns), orCap(s.MaxConnsPerClient, DefaultMaxConnsPerClient), s.Metrics)
	s.tcp = connlimit.NewListener(s.tcp, connlimit.ListenerConfig{
		Limiter:       s.lim,
		ProxyFrom:     s.ProxyProtocolFrom,
		HeaderTimeout: orDuration(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		Logger:        logger,
	})
	// The HTTP/2 server flushes a response's HEADERS apart from its DATA
	// whenever its write queue runs empty in between: batched, they
	// share one system call (see writebatch).
	s.tcp = batchListener{s.tcp}
	budget := orCap(s.ResetBudget, DefaultResetBudget)

	tcpTLS := s.TLSConfig.Clone()
	tcpTLS.NextProtos = []string{"h2", "http/1.1"}
	if tcpTLS.MinVersion == 0 {
		tcpTLS.MinVersion = tls.VersionTLS12
	}
	tcpHandler := s.Handler
	maxReq := int64(orCap(s.MaxRequests, DefaultMaxRequests))
	running := new(atomic.Int64)
	tcpHandler = &guard{next: tcpHandler, maxRequests: maxReq, running: running}
	if !s.DisableHTTP3 {
		// One shared, read-only value: no allocation per request.
		altSvc := []string{fmt.Sprintf(`h3=":%d"; ma=%d`, port, AltSvcMaxAge)}
		next := tcpHandler
		tcpHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Alt-Svc"] = altSvc
			next.ServeHTTP(w, r)
		})
	}
	s.h1 = &http.Server{
		Handler:           tcpHandler,
		TLSConfig:         tcpTLS,
		ReadHeaderTimeout: orDuration(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDuration(s.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDuration(s.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDuration(s.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    orInt(s.MaxHeaderBytes, DefaultMaxHeaderBytes),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: int(orStreams(s.MaxConcurrentStreams))},
		ErrorLog:          errorLog(logger),
	}
	if budget > 0 {
		s.h1.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return withConnState(ctx, budget, nil, s.Metrics)
		}
	}
	if s.DisableHTTP3 {
		return nil
	}
	// One cap of requests for both protocols: the guards share a count.
	h3Handler := &guard{next: s.h3Handler(), maxRequests: maxReq, running: running}
	s.h3 = &http3.Server{
		Handler:        h3Handler,
		TLSConfig:      s.TLSConfig,
		MaxHeaderBytes: orInt(s.MaxHeaderBytes, DefaultMaxHeaderBytes),
		IdleTimeout:    orDuration(s.IdleTimeout, DefaultIdleTimeout),
		Logger:         quicLogger(logger),
		QUICConfig: &quic.Config{
			HandshakeIdleTimeout:           orDuration(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
			MaxIdleTimeout:                 orDuration(s.IdleTimeout, DefaultIdleTimeout),
			MaxIncomingStreams:             int64(orStreams(s.MaxConcurrentStreams)),
			InitialStreamReceiveWindow:     QUICStreamReceiveWindow,
			MaxStreamReceiveWindow:         QUICStreamReceiveWindow,
			InitialConnectionReceiveWindow: QUICConnReceiveWindow,
			MaxConnectionReceiveWindow:     QUICConnReceiveWindow,
			// No 0-RTT: replayable early data buys little for DNS
			// queries and is one more thing to reason about.
			Allow0RTT: false,
		},
	}
	if budget > 0 {
		s.h3.ConnContext = func(ctx context.Context, c *quic.Conn) context.Context {
			return withConnState(ctx, budget, c, s.Metrics)
		}
	}
	// Our own transport, for its hooks that see a client's address
	// before any handshake work: the connection caps.
	s.quicT = &quic.Transport{
		Conn:                s.udp,
		ConnContext:         s.lim.QUICConnContext,
		VerifySourceAddress: s.lim.QUICVerifySourceAddress,
	}
	ln, err := s.quicT.Listen(http3.ConfigureTLSConfig(s.TLSConfig), s.h3.QUICConfig)
	if err != nil {
		_ = s.tcp.Close()
		_ = s.udp.Close()
		return fmt.Errorf("httpserve: listening on quic: %w", err)
	}
	s.quicL = ln
	return nil
}

// h3Handler applies the read and write timeouts per request, as net/http
// does on TCP; quic-go has no server-wide setting for them.
func (s *Server) h3Handler() http.Handler {
	readTimeout := orDuration(s.ReadTimeout, DefaultReadTimeout)
	writeTimeout := orDuration(s.WriteTimeout, DefaultWriteTimeout)
	next := s.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(now.Add(readTimeout))
		_ = rc.SetWriteDeadline(now.Add(writeTimeout))
		next.ServeHTTP(w, r)
	})
}

// BoundAddr returns the bound "host:port" (TCP and UDP share the port),
// or "" before Listen. (The Addr field holds the requested address.)
func (s *Server) BoundAddr() string {
	a := s.TCPAddr()
	if a == nil {
		return ""
	}
	return a.String()
}

// TCPAddr returns the bound TCP address, or nil before Listen.
func (s *Server) TCPAddr() *net.TCPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr().(*net.TCPAddr)
}

// UDPAddr returns the bound UDP address, or nil before Listen or with
// DisableHTTP3.
func (s *Server) UDPAddr() *net.UDPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr().(*net.UDPAddr)
}

// Serve serves both sockets bound by Listen and blocks until both servers
// stop. Once ctx is cancelled it drains as Shutdown does, for at most
// DrainTimeout, and returns nil; it returns nil after Shutdown too, or else
// the first serving error (after which the other server is closed at once).
// Requests see ctx's values but not its cancellation, so that the running
// ones can finish.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.tcp == nil {
		s.mu.Unlock()
		return errors.New("httpserve: Serve called before Listen")
	}
	if s.shut {
		s.mu.Unlock()
		return nil
	}
	h1, h3, tcp, ln := s.h1, s.h3, s.tcp, s.quicL
	s.mu.Unlock()

	base := context.WithoutCancel(ctx)
	h1.BaseContext = func(net.Listener) context.Context { return base }
	if h3 != nil {
		// Requests derive from base; the connection's own state rides on.
		own := h3.ConnContext
		h3.ConnContext = func(_ context.Context, c *quic.Conn) context.Context {
			if own != nil {
				return own(base, c)
			}
			return base
		}
	}

	errc := make(chan error, 2)
	n := 1
	go func() { errc <- serveErr(h1.ServeTLS(tcp, "", ""), "tcp") }()
	if h3 != nil {
		n++
		go func() { errc <- serveErr(h3.ServeListener(ln), "udp") }()
	}
	drained := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(drained)
		s.drain()
	})

	var first error
	for i := range n {
		err := <-errc
		if err != nil && first == nil {
			first = err
			if i+1 < n {
				_ = s.close()
			}
		}
	}
	if !stop() {
		<-drained // the servers stopped accepting; the requests finish here
	}
	return first
}

// drain is Serve's Shutdown once its context is cancelled, unless a
// Shutdown or Close came first.
func (s *Server) drain() {
	s.mu.Lock()
	shut := s.shut
	s.mu.Unlock()
	if shut {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), orDuration(s.DrainTimeout, DefaultDrainTimeout))
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.logger().Warn("draining cut short: requests still running were cut", "err", err)
	}
}

func serveErr(err error, proto string) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpserve: serving %s: %w", proto, err)
}

// Shutdown stops accepting connections on both protocols and waits until
// running requests finish or ctx is done; then it closes what remains.
// New TCP connections are refused at once; HTTP/3 clients get a GOAWAY.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shut = true
	h1, h3, tcp, ln, tr, udp := s.h1, s.h3, s.tcp, s.quicL, s.quicT, s.udp
	s.mu.Unlock()
	if h1 == nil {
		return nil
	}
	var wg sync.WaitGroup
	var err1, err3 error
	wg.Go(func() {
		err1 = h1.Shutdown(ctx)
		// Refuse connections even if Serve never ran.
		_ = tcp.Close()
	})
	if h3 != nil {
		wg.Go(func() {
			// Handshakes in flight are refused; established connections
			// get their GOAWAY from Shutdown.
			_ = ln.Close()
			err3 = h3.Shutdown(ctx)
			// Neither the server nor the transport closes what it was
			// handed.
			_ = tr.Close()
			if err := udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) && err3 == nil {
				err3 = err
			}
		})
	}
	wg.Wait()
	if err1 != nil {
		_ = h1.Close()
		err1 = fmt.Errorf("httpserve: draining tcp: %w", err1)
	}
	if err3 != nil {
		err3 = fmt.Errorf("httpserve: draining udp: %w", err3)
	}
	return errors.Join(err1, err3)
}

// close stops both servers at once, without draining.
func (s *Server) close() error {
	s.mu.Lock()
	s.shut = true
	h1, h3, tcp, ln, tr, udp := s.h1, s.h3, s.tcp, s.quicL, s.quicT, s.udp
	s.mu.Unlock()
	if h1 == nil {
		return nil
	}
	err := h1.Close()
	_ = tcp.Close()
	if h3 != nil {
		_ = ln.Close()
		err = errors.Join(err, h3.Close())
		_ = tr.Close()
		if cerr := udp.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	return err
}

// Close closes both servers at once, aborting running requests.
func (s *Server) Close() error { return s.close() }

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// orCap is a cap's value: def for zero, no cap (0) for negative.
func orCap(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// ConnStats returns the connection caps' counts (zero before Listen).
func (s *Server) ConnStats() connlimit.Stats {
	s.mu.Lock()
	lim := s.lim
	s.mu.Unlock()
	if lim == nil {
		return connlimit.Stats{}
	}
	return lim.Stats()
}

func orStreams(v uint32) uint32 {
	if v == 0 {
		return DefaultMaxConcurrentStreams
	}
	return v
}

// batchListener hands out connections whose writes are batched.
type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writebatch.New(c), nil
}

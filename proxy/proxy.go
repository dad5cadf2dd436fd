package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/connlimit"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/internal/ratelog"
	"github.com/odohd/odoh/internal/stack"
	"github.com/odohd/odoh/odoh"
)

// Defaults for the zero values of Config.
const (
	// DefaultName is the Proxy-Status member name.
	DefaultName = "odoh-proxy"
	// DefaultUserAgent is the fixed User-Agent of upstream requests.
	DefaultUserAgent = "odoh-proxy"
	// DefaultConnectTimeout bounds a TCP connect (or the QUIC handshake's
	// first part) to a target.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake with a target.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseTimeout bounds a whole upstream exchange, from
	// sending the request (connecting if needed) to the response's last
	// byte; past it the client gets 504.
	DefaultResponseTimeout = 10 * time.Second
	// DefaultMaxConcurrent bounds the requests being forwarded at once,
	// over all clients; more get 429.
	DefaultMaxConcurrent = 1024
	// DefaultMaxConcurrentPerClient bounds the requests one client has in
	// progress at once, from reading the body to answering; more get 429.
	DefaultMaxConcurrentPerClient = 64
	// DefaultBodyReadTimeout bounds reading a request's body once its
	// headers are in (an ODoH query is at most 64 KiB); past it the client
	// gets 408.
	DefaultBodyReadTimeout = 5 * time.Second
	// DefaultClientRate is each client's sustained rate, in requests per
	// second (clients are IP addresses, IPv6 /64 prefixes).
	DefaultClientRate = 100
	// DefaultClientBurst is how many requests a client may send at once.
	DefaultClientBurst = 200
	// DefaultMaxClients bounds the clients the rate limiter remembers.
	DefaultMaxClients = 65536
	// DefaultMaxIdleConnsPerTarget bounds idle pooled connections per
	// target (HTTP/2 multiplexes, so one is usually enough).
	DefaultMaxIdleConnsPerTarget = 4
	// DefaultConfigsMinAge and DefaultConfigsMaxAge clamp how long fetched
	// target configs are cached, whatever the target's max-age says.
	DefaultConfigsMinAge = 10 * time.Second
	DefaultConfigsMaxAge = time.Hour
	// DefaultMaxCachedConfigs bounds the targets whose configs are cached.
	DefaultMaxCachedConfigs = 1024
	// DefaultMaxConfigsFetches bounds the configs fetches running at once
	// (each a request to a different target); more misses get 503.
	DefaultMaxConfigsFetches = 32
)

// maxUpstreamHeaderBytes bounds a target's response headers on both
// upstream protocols (an ODoH answer needs a few hundred bytes; quic-go's
// own default is 10 MB).
const maxUpstreamHeaderBytes = 16 << 10

// queryPathAlias is the path Cloudflare's clients POST queries to, served
// like odoh.QueryPath.
const queryPathAlias = "/proxy"

// Config configures a Handler. Every zero limit takes the default named
// above or in its field's doc.
type Config struct {
	// Name is the Proxy-Status member name (an RFC 8941 token).
	Name string
	// Policy says which targets the proxy forwards to. Required.
	Policy Policy
	// RootCAs verifies targets' certificates; nil means the system pool.
	RootCAs *x509.CertPool
	// Resolver resolves target names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// TargetHTTP3 talks to targets over HTTP/3 instead of HTTP/2. A
	// target that fails the QUIC handshake (at most ConnectTimeout) gets
	// that request over HTTP/2, and so do its requests for HTTP3Retry.
	TargetHTTP3 bool
	// HTTP3Retry is how long a target that failed the HTTP/3 handshake is
	// reached over HTTP/2; zero means DefaultHTTP3Retry.
	HTTP3Retry time.Duration
	// UserAgent is sent upstream instead of anything from the client.
	UserAgent string

	// MaxRequestBody bounds a client's request body (413 beyond); zero
	// means odoh.MaxQuerySize, the largest query of any suite. The OHTTP
	// relays take ohttp.MaxDNSMessageSize unless it is set lower.
	MaxRequestBody int64
	// MaxResponseBody bounds a target's response body (502 beyond); zero
	// means odoh.MaxResponseSize. The OHTTP relays take
	// ohttp.MaxDNSMessageSize unless it is set lower.
	MaxResponseBody int64
	// ConnectTimeout bounds connecting to a target.
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with a target.
	TLSHandshakeTimeout time.Duration
	// ResponseTimeout bounds a whole upstream exchange (504 beyond).
	ResponseTimeout time.Duration
	// MaxConcurrent bounds requests being forwarded over all clients
	// (429). A request takes its slot only once its body is read, so slow
	// senders cannot fill it.
	MaxConcurrent int
	// MaxConcurrentPerClient bounds the requests one client (the rate
	// limiter's key) has in progress, body reading included (429);
	// negative disables the cap.
	MaxConcurrentPerClient int
	// BodyReadTimeout bounds reading a request body (408 beyond). It needs
	// a ResponseWriter that supports read deadlines (net/http's HTTP/1 and
	// HTTP/2, quic-go's HTTP/3); elsewhere the server's ReadTimeout bounds
	// the read.
	BodyReadTimeout time.Duration
	// ClientRate is each client's sustained request rate per second;
	// negative disables per-client rate limiting.
	ClientRate float64
	// ClientBurst is each client's bucket size.
	ClientBurst int
	// MaxClients bounds the clients the rate limiter tracks.
	MaxClients int
	// MaxIdleConnsPerTarget bounds pooled idle connections per target.
	MaxIdleConnsPerTarget int
	// ConfigsMinAge and ConfigsMaxAge clamp the caching of target configs.
	// A target's 401 to a query drops its cached configs (it changed its
	// keys), but only configs older than ConfigsMinAge: that also bounds
	// how often clients can make the proxy refetch them.
	ConfigsMinAge, ConfigsMaxAge time.Duration
	// MaxCachedConfigs bounds the number of targets with cached configs
	// (entries being fetched included; a miss that finds the cache full of
	// them gets 503).
	MaxCachedConfigs int
	// MaxConfigsFetches bounds the configs fetches running at once (503
	// beyond). They are counted apart from MaxConcurrent: a fetch serves
	// every client waiting for that target's configs.
	MaxConfigsFetches int

	// OHTTP are the proxy's Oblivious HTTP relay resources (RFC 9458),
	// each forwarding to one gateway (see OHTTPRelay). The gateways must
	// be allowed targets of Policy.
	OHTTP []OHTTPRelay

	// DisableTunnel refuses CONNECT (405), leaving clients the config
	// relay alone. The tunnel is on by default (see serveTunnel).
	DisableTunnel bool
	// TunnelTimeout bounds a tunnel's whole life.
	TunnelTimeout time.Duration
	// TunnelMaxBytes bounds the bytes one tunnel carries, both directions.
	TunnelMaxBytes int64
	// MaxTunnels bounds the tunnels open at once over all clients (429).
	MaxTunnels int
	// MaxTunnelsPerClient bounds the tunnels one client has open (429).
	MaxTunnelsPerClient int

	// Logger receives operational events, never per-request ones and
	// never client addresses: refused requests at info level and targets
	// that fail at warn level, each target and reason at most once every
	// 10 s (with the count of those not logged), naming the target and the
	// reason. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, receives the proxy's counts.
	Metrics Metrics
}

// Handler is the relay. Create it with New; it is safe for concurrent use.
//
// It answers, with "Cache-Control: no-store" unless noted:
//
//   - 405 (Allow: POST) for another method, 415 for another Content-Type,
//     400 for a missing, repeated or malformed targethost or targetpath or
//     an empty body, 413 for a body over MaxRequestBody: each with
//     "Proxy-Status: NAME; error=http_request_error".
//   - 403 with error=http_request_denied for a target or port outside the
//     policy, or error=destination_ip_prohibited for a special address.
//   - 408 with error=http_request_error when the body takes longer than
//     BodyReadTimeout to arrive.
//   - 429 with error=http_request_denied when the client's rate, its own
//     concurrency cap (MaxConcurrentPerClient) or the global one
//     (MaxConcurrent) is exceeded; 503 with error=http_request_denied
//     (and Retry-After) when a configs request would start a fetch beyond
//     MaxConfigsFetches or MaxCachedConfigs.
//   - 502 with error=dns_error, dns_timeout, connection_refused,
//     connection_timeout, connection_terminated, tls_protocol_error,
//     tls_certificate_error, http_response_body_size or
//     destination_unavailable when the target cannot be reached or fails;
//     502 with error=http_protocol_error when it answers 2xx without the
//     ODoH media type; 504 with error=http_response_timeout when it is
//     slower than ResponseTimeout.
//   - Nothing to a client that went away before its answer (counted as
//     client_closed, not as an upstream error).
//   - To CONNECT HOST:PORT: 200 and the tunnel (see the package doc); 400
//     for an authority without a port or outside the grammar, 403, 429 and
//     502/504 as for a query, 405 with DisableTunnel.
//   - Otherwise the target's status and body, unchanged, with its
//     Content-Type and Cache-Control (no-store if it sent none) and
//     "Proxy-Status: NAME; received-status=CODE".
type Handler struct {
	name            string
	maxRequestBody  int64
	maxResponseBody int64
	responseTimeout time.Duration
	maxConcurrent   int64
	bodyReadTimeout time.Duration
	log             *slog.Logger

	policy   atomic.Pointer[compiledPolicy]
	dialer   *dialer
	upstream http.RoundTripper
	closeRT  func() error

	limiter  *limiter           // nil when disabled
	clients  *connlimit.Limiter // requests in progress per client; nil when disabled
	inflight atomic.Int64
	status   *statusHeaders
	upHeader http.Header     // shared, read-only
	bufs     sync.Pool       // *exchange
	chunks   httpbody.Chunks // of bodies larger than an exchange's buffers, as they arrive
	configs  *configCache
	ohttp    ohttpRelays // ohttp.go
	tunnels  *tunnels    // nil when disabled
	metrics  Metrics
	refusals ratelog.Limiter[refusal] // what logFailure logs
}

// New checks cfg and returns a Handler. Call Close when done with it.
func New(cfg Config) (*Handler, error) {
	name := or(cfg.Name, DefaultName)
	if !odoh.IsProxyName(name) {
		return nil, fmt.Errorf("proxy: name %q is not a token", name)
	}
	pol, err := compilePolicy(cfg.Policy)
	if err != nil {
		return nil, err
	}
	ua := or(cfg.UserAgent, DefaultUserAgent)
	h := &Handler{
		name:            name,
		maxRequestBody:  orInt(cfg.MaxRequestBody, odoh.MaxQuerySize),
		maxResponseBody: orInt(cfg.MaxResponseBody, odoh.MaxResponseSize),
		responseTimeout: orInt(cfg.ResponseTimeout, DefaultResponseTimeout),
		maxConcurrent:   int64(orInt(cfg.MaxConcurrent, DefaultMaxConcurrent)),
		bodyReadTimeout: orInt(cfg.BodyReadTimeout, DefaultBodyReadTimeout),
		log:             cfg.Logger,
		status:          newStatusHeaders(name),
		upHeader: http.Header{
			"Content-Type": {odoh.ContentType},
			"Accept":       {odoh.ContentType},
			"User-Agent":   {ua},
		},
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.policy.Store(pol)
	if cfg.ClientRate >= 0 {
		h.limiter = newLimiter(orInt(cfg.ClientRate, DefaultClientRate),
			orInt(cfg.ClientBurst, DefaultClientBurst), orInt(cfg.MaxClients, DefaultMaxClients))
	}
	if cfg.MaxConcurrentPerClient >= 0 {
		h.clients = connlimit.New(0, orInt(cfg.MaxConcurrentPerClient, DefaultMaxConcurrentPerClient))
	}
	resolver := cfg.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	h.dialer = &dialer{
		policy:         &h.policy,
		resolver:       resolver,
		ownResolver:    cfg.Resolver != nil,
		connectTimeout: orInt(cfg.ConnectTimeout, DefaultConnectTimeout),
		tlsTimeout:     orInt(cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		tlsConfig:      &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}},
	}
	if err := h.buildUpstream(cfg); err != nil {
		return nil, err
	}
	h.configs = newConfigCache(h, cfg)
	h.configs.maxBody, h.configs.check = odoh.MaxConfigsSize, checkConfigs
	if err := h.addOHTTPRelays(cfg, pol); err != nil { // ohttp.go
		_ = h.closeRT()
		return nil, err
	}
	h.tunnels = newTunnels(cfg)
	h.metrics = cfg.Metrics
	if h.metrics == nil {
		h.metrics = noMetrics{}
	}
	return h, nil
}

// buildUpstream makes the one pooled transport every client shares:
// HTTP/2 over TLS, and with TargetHTTP3 HTTP/3 first, falling back to it
// (see h3Fallback).
func (h *Handler) buildUpstream(cfg Config) error {
	h2 := &http.Transport{
		// Never from the environment: a relay must not be redirected
		// through whatever HTTPS_PROXY says.
		Proxy:                  nil,
		DialTLSContext:         h.dialer.dialTLS,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    orInt(cfg.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget),
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		DisableCompression:     true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     10 * time.Second,
		},
	}
	h.upstream = h2
	h.closeRT = func() error { h2.CloseIdleConnections(); return nil }
	if !cfg.TargetHTTP3 {
		return nil
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return fmt.Errorf("proxy: opening udp socket for http3: %w", err)
	}
	h.dialer.quic = &quic.Transport{Conn: udp}
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs},
		QUICConfig: &quic.Config{
			// The QUIC handshake is the connection and TLS at once;
			// a target that does not answer it in the connect
			// timeout leaves time for HTTP/2 within the response
			// timeout.
			HandshakeIdleTimeout: h.dialer.connectTimeout,
			MaxIdleTimeout:       90 * time.Second,
			KeepAlivePeriod:      30 * time.Second,
		},
		Dial:                   h.dialer.dialQUIC,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
	}
	h.upstream = &h3Fallback{h3: h3, h2: h2, retry: orInt(cfg.HTTP3Retry, DefaultHTTP3Retry),
		log: h.log, now: time.Now, noH3: make(map[string]time.Time)}
	h.closeRT = func() error {
		h2.CloseIdleConnections()
		err := h3.Close()
		// quic.Transport.Close leaves a Conn it did not create open.
		return errors.Join(err, h.dialer.quic.Close(), udp.Close())
	}
	return nil
}

// SetPolicy replaces the target policy (on SIGHUP, say). Requests already
// past the policy check finish; idle connections are closed so that a
// removed target stops being contacted. A bad policy leaves the old one.
func (h *Handler) SetPolicy(p Policy) error {
	pol, err := compilePolicy(p)
	if err != nil {
		return err
	}
	h.policy.Store(pol)
	h.configs.purge()
	h.ohttp.keys.purge()
	if ci, ok := h.upstream.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
	return nil
}

// Close releases the upstream connections.
func (h *Handler) Close() error { return h.closeRT() }

// ServeHTTP serves odoh.QueryPath (and /proxy), odoh.ConfigsPath and
// CONNECT.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The relay path goes some 3.5 KiB deep (net/http's HTTP/2 client
	// blocks in a select there): grow the goroutine's stack here, once.
	stack.Grow()
	if r.Method == http.MethodConnect {
		h.serveTunnel(w, r) // tunnel.go
		return
	}
	switch r.URL.Path {
	case odoh.QueryPath, queryPathAlias:
		h.serveQuery(w, r)
	case odoh.ConfigsPath:
		h.serveConfigs(w, r)
	default:
		if rel := h.ohttp.byPath[r.URL.Path]; rel != nil {
			h.serveOHTTP(w, r, rel) // ohttp.go
			return
		}
		w.Header()["Cache-Control"] = noStore
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// Header values shared by every response. They are never mutated: the
// handler only assigns them and net/http only reads them (capacity =
// length, so an append by anyone copies).
var (
	noStore     = []string{"no-store"}
	allowPost   = []string{"POST"}
	allowGet    = []string{"GET, HEAD"}
	retryAfter  = []string{"1"}
	textPlain   = []string{"text/plain; charset=utf-8"}
	nosniff     = []string{"nosniff"}
	octetStream = []string{odoh.ConfigsContentType}
)

// exchange holds the pooled buffers of one forwarded query. It goes back
// to the pool when both the handler and the transport (which may read the
// request body in another goroutine after RoundTrip returns) are done.
type exchange struct {
	req, resp []byte
	refs      atomic.Int32
	pool      *sync.Pool
	// getBody is newBody bound once, so that a request's GetBody costs no
	// allocation of its own.
	getBody func() (io.ReadCloser, error)
	// timer bounds the request's stages (see exchangeTimer); nil until
	// first needed, and dropped when it may still fire late.
	timer *exchangeTimer
}

// exchangeTimer is the deadline of the request using an exchange, one
// stage at a time, reused by the requests that reuse the exchange (instead
// of a context or a timer of their own each). Reading the request body,
// it sets a read deadline in the past on the request's ResponseWriter only
// if it runs out, which ends the blocked read with os.ErrDeadlineExceeded
// as a deadline set beforehand would: net/http's HTTP/2 server makes each
// read deadline set a message to the connection's serving goroutine, and a
// body that arrives in time needs none. During the upstream exchange it
// cancels the exchange's context with errResponseDeadline.
type exchangeTimer struct {
	t  *time.Timer
	mu sync.Mutex
	// What fire does: end w's body read, or cancel; both nil when
	// disarmed.
	w      http.ResponseWriter
	cancel context.CancelCauseFunc
	fired  bool
}

// arm arms ex's timer to run out after d, ending w's body read (w not nil)
// or calling cancel.
func (ex *exchange) arm(d time.Duration, w http.ResponseWriter, cancel context.CancelCauseFunc) *exchangeTimer {
	et := ex.timer
	if et == nil {
		et = &exchangeTimer{}
		ex.timer = et
	}
	et.mu.Lock()
	et.w, et.cancel, et.fired = w, cancel, false
	et.mu.Unlock()
	if et.t == nil {
		et.t = time.AfterFunc(d, et.fire)
	} else {
		et.t.Reset(d)
	}
	return et
}

// disarm stops et and reports whether it ran out. A timer whose function
// may still be on its way is not reused: it could end a stage of a later
// request.
func (ex *exchange) disarm(et *exchangeTimer) (fired bool) {
	et.mu.Lock()
	et.w, et.cancel, fired = nil, nil, et.fired
	et.mu.Unlock()
	if !et.t.Stop() {
		ex.timer = nil
	}
	return fired
}

func (et *exchangeTimer) fire() {
	et.mu.Lock()
	defer et.mu.Unlock()
	switch {
	case et.w != nil:
		et.fired = http.NewResponseController(et.w).SetReadDeadline(time.Unix(1, 0)) == nil
	case et.cancel != nil:
		et.cancel(errResponseDeadline)
		et.fired = true
	}
}

func (h *Handler) getExchange() *exchange {
	ex, _ := h.bufs.Get().(*exchange)
	if ex == nil {
		ex = &exchange{req: make([]byte, 0, 1024), resp: make([]byte, 0, 2048), pool: &h.bufs}
		ex.getBody = ex.newBody
	}
	ex.refs.Store(1)
	return ex
}

func (ex *exchange) release() {
	if ex.refs.Add(-1) == 0 && cap(ex.req) <= httpbody.MaxPooled && cap(ex.resp) <= httpbody.MaxPooled {
		ex.pool.Put(ex)
	}
}

// newBody returns a reader of ex.req holding its own reference to ex; it
// is also the request's GetBody, for a transport that retries. Each reader
// is fresh, so a late or repeated Close can never release a reference of
// a later request that reuses ex.
func (ex *exchange) newBody() (io.ReadCloser, error) {
	ex.refs.Add(1)
	return &bodyReader{ex: ex}, nil
}

// bodyReader reads ex.req; Close drops its reference once.
type bodyReader struct {
	ex     *exchange
	off    int
	closed atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.off >= len(b.ex.req) {
		return 0, io.EOF
	}
	if b.off == 0 {
		// The first read is near the top of the HTTP/2 client's writer
		// goroutine, a new one per request, whose TLS write of the body
		// (AES-GCM) is past its starting stack: grow it here, once.
		stack.Grow()
	}
	n := copy(p, b.ex.req[b.off:])
	b.off += n
	return n, nil
}

func (b *bodyReader) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.ex.release()
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orInt[T int | int64 | float64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

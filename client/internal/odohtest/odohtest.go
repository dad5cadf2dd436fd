// Package odohtest holds test doubles for the client's tests: a small but
// correct ODoH target and a forwarding proxy, served over real TLS with
// HTTP/2 and HTTP/3 on loopback.
//
// They exist because a real target cannot be told to misbehave: every knob
// here injects one response defect the client must reject (RFC 9230 part 1 C).
// The real target and proxy are tested against the client in interop/.
package odohtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// Defect selects one way the target misbehaves on POST /dns-query.
type Defect int

// The defects a target can inject.
const (
	DefectNone        Defect = iota
	DefectContentType        // 200 with text/plain
	DefectTypeByte           // response message_type 0x01
	DefectNonceLength        // resp_nonce one byte short
	DefectPadding            // non-zero padding in the response plaintext
	DefectRedirect           // 307 to another location
	DefectBadRequest         // 400 always
	DefectGarbage            // 200 with random bytes
)

// Target is an ODoH target double. Its zone: every name under "nx." is
// NXDOMAIN; every other A query is answered with 192.0.2.1, TTL 300;
// AAAA with 2001:db8::1; other types get an empty NOERROR answer.
type Target struct {
	// MaxAge is the Cache-Control max-age of the configs, in seconds,
	// unless SetCacheControl gave the header.
	MaxAge int
	// cacheControl, if set, are the configs' Cache-Control field lines.
	cacheControl atomic.Pointer[[]string]

	mu   sync.Mutex
	seed []byte           // the key's seed, for crafting defects below the odoh API
	key  *odoh.PrivateKey // the key published and accepted
	prev *odoh.PrivateKey // the key before, accepted with AcceptPrevious
	// configPeers are the remote addresses of the configs fetches.
	configPeers []string

	defect atomic.Int32
	// AcceptPrevious keeps the key before the last Rotate accepted, as
	// the real target accepts the previous epoch's.
	AcceptPrevious atomic.Bool
	// Counters for assertions.
	ConfigFetches atomic.Int64
	Queries       atomic.Int64
	Unauthorized  atomic.Int64
	// LastHeaders is the header set of the last POST.
	lastHeaders atomic.Pointer[http.Header]
	// Delay is slept before answering each query (nanoseconds).
	Delay atomic.Int64
	// gate, if set, holds the queries it matches until it is opened.
	gate atomic.Pointer[Gate]
	// LastQueryID is the DNS ID of the last query opened.
	LastQueryID atomic.Int32
	// RedirectHits counts requests to the redirect location.
	RedirectHits atomic.Int64
}

// NewTarget returns a target with a fresh random key.
func NewTarget(tb testing.TB) *Target {
	tb.Helper()
	t := &Target{MaxAge: 3600}
	t.Rotate(tb)
	return t
}

// Rotate replaces the key; queries sealed to the old key get 401 from now on.
func (t *Target) Rotate(tb testing.TB) {
	tb.Helper()
	seed := make([]byte, odoh.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		tb.Fatal(err)
	}
	k, err := odoh.DeriveKey(odoh.DefaultSuite(), seed)
	if err != nil {
		tb.Fatal(err)
	}
	t.mu.Lock()
	t.seed, t.key, t.prev = seed, k, t.key
	t.mu.Unlock()
}

// Config returns the current public config.
func (t *Target) Config() *odoh.Config {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.key.Config()
}

// SetCacheControl makes the configs carry these Cache-Control field lines
// instead of max-age=MaxAge.
func (t *Target) SetCacheControl(lines []string) { t.cacheControl.Store(&lines) }

// ConfigPeers returns the remote address of every configs fetch so far.
func (t *Target) ConfigPeers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.configPeers...)
}

// Gate holds the queries for one name (or every query) at the target,
// after they are opened and before they are answered, until the test
// opens it. It lets a test keep a query in flight for exactly as long as
// it needs instead of for a delay that a loaded machine may outlast.
type Gate struct {
	name string        // lower-case FQDN held; "" holds every query
	held chan struct{} // one value per query held
	open chan struct{}
	once sync.Once
}

// maxHeld bounds the queries a Gate reports without blocking the
// target's handlers; the tests hold a handful.
const maxHeld = 256

// Hold installs a closed gate for queries whose question name is name
// (case-insensitive; "" for every query) and returns it. The gate is
// opened and removed when the test ends.
func (t *Target) Hold(tb testing.TB, name string) *Gate {
	tb.Helper()
	g := &Gate{name: strings.ToLower(name), held: make(chan struct{}, maxHeld), open: make(chan struct{})}
	t.gate.Store(g)
	tb.Cleanup(func() {
		t.gate.CompareAndSwap(g, nil)
		g.Open()
	})
	return g
}

// Held receives one value each time a query is held.
func (g *Gate) Held() <-chan struct{} { return g.held }

// Open releases the held queries and lets later ones through.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

func (g *Gate) hold(query []byte) {
	if g.name != "" {
		var m dns.Msg
		if m.Unpack(query) != nil || len(m.Question) != 1 || strings.ToLower(m.Question[0].Name) != g.name {
			return
		}
	}
	select {
	case <-g.open:
		return
	default:
	}
	g.held <- struct{}{}
	<-g.open
}

// SetDefect selects the defect injected from now on.
func (t *Target) SetDefect(d Defect) { t.defect.Store(int32(d)) }

// LastHeaders returns the headers of the last query POST.
func (t *Target) LastHeaders() http.Header {
	if h := t.lastHeaders.Load(); h != nil {
		return *h
	}
	return nil
}

// ServeHTTP implements the target's two endpoints.
func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case odoh.ConfigsPath:
		t.ConfigFetches.Add(1)
		t.mu.Lock()
		t.configPeers = append(t.configPeers, r.RemoteAddr)
		t.mu.Unlock()
		b, err := odoh.MarshalConfigs(t.Config())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if cc := t.cacheControl.Load(); cc != nil {
			w.Header()["Cache-Control"] = *cc
		} else {
			w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", t.MaxAge))
		}
		_, _ = w.Write(b)
	case odoh.QueryPath:
		t.query(w, r)
	case "/moved":
		t.RedirectHits.Add(1)
		http.Error(w, "moved here", http.StatusTeapot)
	default:
		http.NotFound(w, r)
	}
}

func (t *Target) query(w http.ResponseWriter, r *http.Request) {
	t.Queries.Add(1)
	h := r.Header.Clone()
	t.lastHeaders.Store(&h)
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Content-Type") != odoh.ContentType {
		http.Error(w, "content type", http.StatusUnsupportedMediaType)
		return
	}
	if d := t.Delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	d := Defect(t.defect.Load())
	switch d {
	case DefectRedirect:
		w.Header().Set("Location", "/moved")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	case DefectBadRequest:
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<17))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	m, err := odoh.ParseMessage(body)
	if err != nil || m.Type != odoh.MessageTypeQuery {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	t.mu.Lock()
	key := t.key
	if t.prev != nil && t.AcceptPrevious.Load() && bytes.Equal(m.KeyID, t.prev.KeyID()) {
		key = t.prev
	}
	t.mu.Unlock()
	if !bytes.Equal(m.KeyID, key.KeyID()) {
		t.Unauthorized.Add(1)
		http.Error(w, "key mismatch", http.StatusUnauthorized)
		return
	}
	q, err := key.OpenQuery(m)
	if err != nil {
		http.Error(w, "decrypt", http.StatusBadRequest)
		return
	}
	if len(q.DNS) >= 2 {
		t.LastQueryID.Store(int32(q.DNS[0])<<8 | int32(q.DNS[1]))
	}
	if g := t.gate.Load(); g != nil {
		g.hold(q.DNS)
	}
	answer, err := Answer(q.DNS)
	if err != nil {
		http.Error(w, "dns", http.StatusBadRequest)
		return
	}
	var resp []byte
	if d == DefectPadding {
		resp, err = t.craftBadPadding(body, answer)
	} else {
		resp, err = q.SealResponse(answer)
	}
	if err != nil {
		http.Error(w, "seal", http.StatusInternalServerError)
		return
	}
	ct := odoh.ContentType
	switch d {
	case DefectContentType:
		ct = "text/plain"
	case DefectTypeByte:
		resp[0] = byte(odoh.MessageTypeQuery)
	case DefectNonceLength:
		resp = shortenNonce(resp)
	case DefectGarbage:
		resp = []byte("this is not an odoh message at all")
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// shortenNonce re-frames a response with a resp_nonce one byte shorter
// (the last nonce byte moves into the ciphertext), keeping the lengths
// consistent so only the nonce-length check can catch it.
func shortenNonce(resp []byte) []byte {
	m, err := odoh.ParseMessage(resp)
	if err != nil {
		return resp
	}
	n := len(m.KeyID)
	enc := append([]byte{m.KeyID[n-1]}, m.Encrypted...)
	out, _ := odoh.Message{Type: odoh.MessageTypeResponse, KeyID: m.KeyID[:n-1], Encrypted: enc}.MarshalBinary()
	return out
}

// Answer is the zone of the target double.
func Answer(query []byte) ([]byte, error) {
	var q dns.Msg
	if err := q.Unpack(query); err != nil {
		return nil, err
	}
	var a dns.Msg
	a.SetReply(&q)
	a.RecursionAvailable = true
	if len(q.Question) == 1 {
		qq := q.Question[0]
		name := strings.ToLower(qq.Name)
		switch {
		case name == "nx." || strings.HasSuffix(name, ".nx."):
			a.Rcode = dns.RcodeNameError
			a.Ns = append(a.Ns, &dns.SOA{Hdr: dns.RR_Header{Name: "nx.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
				Ns: "ns.nx.", Mbox: "h.nx.", Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 30})
		case qq.Qtype == dns.TypeA:
			a.Answer = append(a.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: net.IPv4(192, 0, 2, 1)})
		case qq.Qtype == dns.TypeAAAA:
			a.Answer = append(a.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 300},
				AAAA: net.ParseIP("2001:db8::1")})
		}
	}
	return a.Pack()
}

// Proxy is a forwarding ODoH proxy double: POST /dns-query?targethost=&targetpath=
// (or the path form /p/{targethost}/{targetpath}), a config relay at
// GET /.well-known/odohconfigs?targethost= (uncached: each relayed request
// is a fetch at the target) and a CONNECT tunnel to any host it maps. It
// never follows redirects and forwards status, Content-Type and body
// unchanged.
type Proxy struct {
	// Client reaches targets; its transport maps every host to Dial.
	Client *http.Client
	addrs  map[string]string
	// Requests counts requests, CONNECT included.
	Requests atomic.Int64
	// Tunnels counts CONNECT tunnels opened.
	Tunnels atomic.Int64
	// NoTunnel makes CONNECT fail as at a plain ODoH relay (405).
	NoTunnel atomic.Bool
	// lastHeaders are the client's headers on the last request.
	lastHeaders atomic.Pointer[http.Header]
	// Down makes the proxy answer 503 to everything.
	Down atomic.Bool
}

// NewProxy returns a proxy that trusts ca and dials every target host through
// the mapping addrs ("host:port" → "127.0.0.1:port", as it is now); unmapped hosts are
// dialled as they are (IP literals only in tests).
func NewProxy(ca *testca.CA, addrs map[string]string) *Proxy {
	// A copy: the caller goes on adding entries (its other servers) while
	// this proxy's transport may already be dialling.
	addrs = maps.Clone(addrs)
	tr := &http.Transport{
		TLSClientConfig:   ca.ClientTLS(),
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if a, ok := addrs[addr]; ok {
				addr = a
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return &Proxy{addrs: addrs, Client: &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// ServeHTTP forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Requests.Add(1)
	h := r.Header.Clone()
	p.lastHeaders.Store(&h)
	if p.Down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	var host, path string
	if strings.HasPrefix(r.URL.EscapedPath(), "/p/") {
		parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/p/"), "/", 2)
		if len(parts) != 2 {
			http.Error(w, "path form", http.StatusBadRequest)
			return
		}
		var err1, err2 error
		host, err1 = url.PathUnescape(parts[0])
		path, err2 = url.PathUnescape(parts[1])
		if err1 != nil || err2 != nil {
			http.Error(w, "path form", http.StatusBadRequest)
			return
		}
	} else {
		host, path = r.URL.Query().Get("targethost"), r.URL.Query().Get("targetpath")
	}
	method := http.MethodPost
	var body io.Reader = r.Body
	if r.URL.Path == odoh.ConfigsPath {
		method, body, path = http.MethodGet, nil, odoh.ConfigsPath
	} else if host == "" || path == "" || r.Method != http.MethodPost {
		w.Header().Set("Proxy-Status", "test; error=http_request_error")
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	u := &url.URL{Scheme: "https", Host: host, Path: path}
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), body)
	if err != nil {
		http.Error(w, "bad target", http.StatusBadRequest)
		return
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		req.Header.Set("Accept", r.Header.Get("Accept"))
	}
	// Pass the client's headers through so tests can see what the client sent.
	for _, k := range []string{"Cache-Control", "Cookie", "User-Agent", "Authorization"} {
		if v, ok := r.Header[k]; ok {
			req.Header[k] = v
		}
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		w.Header().Set("Proxy-Status", "test; error=connection_refused")
		http.Error(w, "connect", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "Cache-Control", "Location"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set("Proxy-Status", fmt.Sprintf("test; received-status=%d", resp.StatusCode))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// tunnel serves CONNECT over HTTP/2 or HTTP/3: the stream carries the
// bytes of a TCP connection to the mapped address of r.Host.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	if p.NoTunnel.Load() {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	addr := r.Host // unmapped hosts are dialled as they are (IP literals)
	if a, ok := p.addrs[addr]; ok {
		addr = a
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		w.Header().Set("Proxy-Status", "test; error=connection_refused")
		http.Error(w, "connect", http.StatusBadGateway)
		return
	}
	defer conn.Close()
	p.Tunnels.Add(1)
	Splice(w, r, conn)
}

// Splice answers a CONNECT (HTTP/2 or HTTP/3) with 200 and copies bytes
// between the stream and conn until either side ends.
func Splice(w http.ResponseWriter, r *http.Request, conn net.Conn) {
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	body, done := r.Body, make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, body)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil || rc.Flush() != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = conn.Close()
	_ = body.Close() // unblocks the copy above
	<-done
}

// LastHeaders returns the client's headers on the last request.
func (p *Proxy) LastHeaders() http.Header {
	if h := p.lastHeaders.Load(); h != nil {
		return *h
	}
	return nil
}

// Server is a handler served over TLS with HTTP/2 and HTTP/3 on 127.0.0.1.
type Server struct {
	srv *httpserve.Server
	// Addr is "127.0.0.1:port" (TCP and UDP).
	Addr string
}

// Serve serves h on 127.0.0.1:0 with a certificate for names (plus the
// loopback defaults) until the test ends.
func Serve(tb testing.TB, ca *testca.CA, h http.Handler, names ...string) *Server {
	tb.Helper()
	s := &httpserve.Server{
		Addr:      "127.0.0.1:0",
		Handler:   h,
		TLSConfig: ca.ServerTLS(tb, append(names, testca.DefaultNames()...)...),
		Logger:    discardLogger(),
	}
	if err := s.Listen(); err != nil {
		tb.Fatal(err)
	}
	return start(tb, s)
}

// ServeDual serves h like Serve on 127.0.0.1 and also on [::1] at the
// same port, so that a test can tell connections apart by their address
// family: Addr is the IPv4 one, IPv6 the other.
func ServeDual(tb testing.TB, ca *testca.CA, h http.Handler, names ...string) (s *Server, ipv6 string) {
	tb.Helper()
	tlsConf := ca.ServerTLS(tb, append(names, testca.DefaultNames()...)...)
	for range 20 {
		s4 := &httpserve.Server{Addr: "127.0.0.1:0", Handler: h, TLSConfig: tlsConf, Logger: discardLogger()}
		if err := s4.Listen(); err != nil {
			tb.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(s4.BoundAddr())
		s6 := &httpserve.Server{Addr: "[::1]:" + port, Handler: h, TLSConfig: tlsConf, Logger: discardLogger()}
		if err := s6.Listen(); err != nil {
			_ = s4.Close() // the port is taken on ::1: another one
			continue
		}
		start(tb, s6)
		return start(tb, s4), s6.BoundAddr()
	}
	tb.Fatal("no port free on both 127.0.0.1 and ::1")
	return nil, ""
}

// start serves s until the test ends.
func start(tb testing.TB, s *httpserve.Server) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(sctx)
		scancel()
		cancel()
		<-done
	})
	return &Server{srv: s, Addr: s.BoundAddr()}
}

// Close stops the server at once (a proxy that went away).
func (s *Server) Close() { _ = s.srv.Close() }

// Port returns the server's port.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.Addr)
	return p
}

// ServerTLS is a shorthand used when a test wants its own tls.Config.
func ServerTLS(tb testing.TB, ca *testca.CA, names ...string) *tls.Config {
	return ca.ServerTLS(tb, append(names, testca.DefaultNames()...)...)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

package client_test

// Tests of issue 8's properties over real sockets: the target never sees
// the client's address, and no proxy can make the client use a key that
// the target did not publish, whatever path the configs come by.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testdns"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
)

const (
	otherName   = "other-target.test" // an honest target the client did not choose
	rogueName   = "rogue-target.test" // a target run by a dishonest proxy's operator
	taggingName = "tagging-target.test"
	honestProxy = "p.honest-proxy.test"
	rogueProxy  = "p.rogue-proxy.test"
)

// world is a real proxy (odoh-proxy's handler) in front of an honest
// target, another target and a rogue one, each with a certificate for its
// own name only (and the loopback defaults) from one CA. The proxy
// resolves the names to 127.0.0.1; the client dials the honest target at
// [::1] if it ever dials it, so that the target can tell the two apart.
type world struct {
	ca                     *testca.CA
	honest, other, rogue   *odohtest.Target
	hsrv, osrv, rsrv       *odohtest.Server
	honest6                string // the honest target's [::1]:port
	relay                  *proxy.Handler
	psrv                   *odohtest.Server
	expired                []byte // configs the honest target published before rotating
	honestKey, otherKey    []byte // key IDs
	rogueKey, expiredKeyID []byte
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{ca: testca.New(t), honest: odohtest.NewTarget(t), other: odohtest.NewTarget(t), rogue: odohtest.NewTarget(t)}
	var err error
	if w.expired, err = odoh.MarshalConfigs(w.honest.Config()); err != nil {
		t.Fatal(err)
	}
	w.expiredKeyID = w.honest.Config().KeyID()
	w.honest.Rotate(t) // what it published before is a set that expired
	w.honestKey, w.otherKey, w.rogueKey = w.honest.Config().KeyID(), w.other.Config().KeyID(), w.rogue.Config().KeyID()
	w.hsrv, w.honest6 = odohtest.ServeDual(t, w.ca, w.honest, targetName)
	w.osrv = odohtest.Serve(t, w.ca, w.other, otherName)
	w.rsrv = odohtest.Serve(t, w.ca, w.rogue, rogueName)
	names := map[string]string{targetName: "127.0.0.1", otherName: "127.0.0.1", rogueName: "127.0.0.1", taggingName: "127.0.0.1"}
	w.relay, err = proxy.New(proxy.Config{
		Policy: proxy.Policy{Allow: []string{w.host(), otherName + ":" + w.osrv.Port(), rogueName + ":" + w.rsrv.Port()},
			AllowSpecialAddrs: true}, // the names resolve to loopback here
		Resolver:   testResolver(t, names),
		RootCAs:    w.ca.Pool(),
		ClientRate: -1,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.relay.Close() })
	w.psrv = odohtest.Serve(t, w.ca, w.relay, honestProxy)
	return w
}

func (w *world) host() string { return targetName + ":" + w.hsrv.Port() }

// config is a client of the honest target through the proxy served by
// srv under name, logging into logs (if not nil).
func (w *world) config(name string, srv *odohtest.Server, h3 bool, logs *testlog.Buffer) client.Config {
	var out io.Writer = io.Discard
	if logs != nil {
		out = logs
	}
	return client.Config{
		Proxies: []string{"https://" + name + ":" + srv.Port() + "/dns-query{?targethost,targetpath}"},
		Targets: []string{"https://" + w.host() + "/dns-query"},
		RootCAs: w.ca.Pool(),
		Resolve: map[string]string{name + ":" + srv.Port(): srv.Addr, w.host(): w.honest6},
		HTTP3:   h3,
		Timeout: 5 * time.Second,
		Logger:  slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// queries counts what the three targets decrypted.
func (w *world) queries() int64 {
	return w.honest.Queries.Load() + w.other.Queries.Load() + w.rogue.Queries.Load()
}

// testResolver answers A queries for names from a test DNS server on
// 127.0.0.1: the proxy's resolver, never the system's.
func testResolver(t *testing.T, names map[string]string) *net.Resolver {
	t.Helper()
	srv := testdns.Start(t, func(rw dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		ip, ok := names[strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		}
		_ = rw.WriteMsg(m)
	})
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", srv.Addr)
	}}
}

// rogue is a dishonest proxy: it forwards queries through the real proxy
// handler, and answers CONNECT and configs requests its own way when told.
type rogue struct {
	honest                  http.Handler
	connect                 func(w http.ResponseWriter, r *http.Request)
	configs                 func(w http.ResponseWriter, r *http.Request)
	posts, connects, relays atomic.Int64
}

func (p *rogue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.connects.Add(1)
		if p.connect != nil {
			p.connect(w, r)
			return
		}
	case r.URL.Path == odoh.ConfigsPath:
		p.relays.Add(1)
		if p.configs != nil {
			p.configs(w, r)
			return
		}
	default:
		p.posts.Add(1)
	}
	p.honest.ServeHTTP(w, r)
}

// serveRogue serves p under rogueProxy.
func (w *world) serveRogue(t *testing.T, p *rogue) *odohtest.Server {
	p.honest = w.relay
	return odohtest.Serve(t, w.ca, p, rogueProxy)
}

// tunnelTo answers CONNECT with a tunnel to addr, whatever was asked.
func tunnelTo(addr string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			http.Error(w, "dial", http.StatusBadGateway)
			return
		}
		defer conn.Close()
		odohtest.Splice(w, r, conn)
	}
}

// relayBody answers configs requests with body, for an hour.
func relayBody(body []byte) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(body)
	}
}

// redirectTo answers with a 307 to location.
func redirectTo(location string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

func marshal(t *testing.T, c *odoh.Config) []byte {
	t.Helper()
	b, err := odoh.MarshalConfigs(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipped returns b with its last byte (the end of the last config's
// public key) flipped: it still parses, as another key.
func flipped(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 0x01
	return b
}

// tlsRecords splits a TLS byte stream into records as they complete,
// calling emit with each whole record (and leaving a partial one for the
// next call).
type tlsRecords struct{ buf []byte }

func (s *tlsRecords) feed(p []byte, emit func(rec []byte) error) error {
	s.buf = append(s.buf, p...)
	for len(s.buf) >= 5 {
		n := 5 + int(binary.BigEndian.Uint16(s.buf[3:5]))
		if len(s.buf) < n {
			return nil
		}
		rec := s.buf[:n:n]
		s.buf = s.buf[n:]
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// flipTunnel tunnels to addr and flips one byte of the target's first
// application-data record after the client's second one (its Finished,
// then its request): the record that carries the configs.
func flipTunnel(addr string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			http.Error(w, "dial", http.StatusBadGateway)
			return
		}
		defer conn.Close()
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		var fromClient atomic.Int32
		body, done := r.Body, make(chan struct{})
		defer func() { _ = conn.Close(); _ = body.Close(); <-done }()
		go func() {
			defer close(done)
			var rs tlsRecords
			buf := make([]byte, 16<<10)
			for {
				n, err := body.Read(buf)
				_ = rs.feed(buf[:n], func(rec []byte) error {
					if rec[0] == 23 {
						fromClient.Add(1)
					}
					_, err := conn.Write(rec)
					return err
				})
				if err != nil {
					_ = conn.(*net.TCPConn).CloseWrite()
					return
				}
			}
		}()
		var rs tlsRecords
		flippedOne := false
		buf := make([]byte, 16<<10)
		for {
			n, err := conn.Read(buf)
			werr := rs.feed(buf[:n], func(rec []byte) error {
				if rec[0] == 23 && !flippedOne && fromClient.Load() >= 2 {
					rec = bytes.Clone(rec)
					rec[len(rec)/2] ^= 0x01
					flippedOne = true
				}
				if _, err := w.Write(rec); err != nil {
					return err
				}
				return rc.Flush()
			})
			if err != nil || werr != nil {
				return
			}
		}
	}
}

// replayTunnel records the target's side of the first tunnel through it
// (passing it on), and plays that recording back to every later CONNECT,
// whatever the client sends: an old session's configs, replayed. A later
// CONNECT waits for the recording to end (the first client may still be
// closing its tunnel), so that it never gets an honest tunnel instead.
func replayTunnel(addr string) func(http.ResponseWriter, *http.Request) {
	var first atomic.Bool
	done := make(chan struct{})
	var recorded []byte
	return func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			defer close(done)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				http.Error(w, "dial", http.StatusBadGateway)
				return
			}
			defer conn.Close()
			var b bytes.Buffer
			odohtest.Splice(w, r, &teeConn{Conn: conn, w: &b})
			recorded = b.Bytes()
			return
		}
		select {
		case <-done:
		case <-r.Context().Done():
			return
		}
		if recorded == nil {
			http.Error(w, "nothing recorded", http.StatusBadGateway)
			return
		}
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		body, bodyDone := r.Body, make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, body); close(bodyDone) }()
		_, _ = w.Write(recorded)
		_ = rc.Flush()
		_ = body.Close()
		<-bodyDone
	}
}

// teeConn copies what is read from Conn to w.
type teeConn struct {
	net.Conn
	w io.Writer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.Write(p[:n])
	return n, err
}

func (c *teeConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// exchange runs one query and returns its error.
func exchange(t *testing.T, c *client.Client) error {
	t.Helper()
	_, err := c.Exchange(t.Context(), query("www.example.", dns.TypeA))
	return err
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The default path (the tunnel, checked against the relay): every way a
// proxy can answer a configs fetch with configs that are not the target's
// is refused with an error that names it, and no query is sealed to any
// key at all; the honest proxy's path answers.
func TestRogueProxyTunnel(t *testing.T) {
	w := newWorld(t)
	other, rogueAddr := w.osrv.Addr, w.rsrv.Addr
	honestAddr := w.hsrv.Addr
	testCases := []struct {
		name     string
		connect  func(http.ResponseWriter, *http.Request)
		configs  func(http.ResponseWriter, *http.Request)
		prime    bool // an honest fetch first (the replay records it)
		want     []string
		sentinel error
	}{
		{name: "tunnel to its own target", connect: tunnelTo(rogueAddr),
			want: []string{"TLS with target " + w.host() + " through the tunnel", "certificate is valid for " + rogueName}},
		{name: "tunnel to another target", connect: tunnelTo(other),
			want: []string{"TLS with target " + w.host() + " through the tunnel", "certificate is valid for " + otherName}},
		{name: "tunnel flipping a byte", connect: flipTunnel(honestAddr),
			want: []string{"fetching https://" + w.host() + "/.well-known/odohconfigs through the tunnel", "bad record MAC"}},
		{name: "tunnel replaying an old session", connect: replayTunnel(honestAddr), prime: true,
			want: []string{"TLS with target " + w.host() + " through the tunnel"}},
		{name: "CONNECT redirected", connect: redirectTo("https://" + w.host() + "/moved"),
			want: []string{"CONNECT " + w.host() + " via", "answered HTTP 307"}, sentinel: client.ErrRedirect},
		{name: "relay redirected", configs: redirectTo("https://" + w.host() + "/moved"),
			want: []string{"the proxy's config relay did not answer", "answered HTTP 307"}, sentinel: client.ErrRedirect},
		{name: "relay with its own configs", configs: relayBody(marshal(t, w.rogue.Config())),
			want: []string{fmt.Sprintf("published key %x through the tunnel, the proxy's relay holds %x", w.honestKey, w.rogueKey)}, sentinel: client.ErrInconsistentConfigs},
		{name: "relay with another target's configs", configs: relayBody(marshal(t, w.other.Config())),
			want: []string{fmt.Sprintf("the proxy's relay holds %x", w.otherKey)}, sentinel: client.ErrInconsistentConfigs},
		{name: "relay flipping a byte", configs: relayBody(flipped(marshal(t, w.honest.Config()))),
			want: []string{"configs from the tunnel and from the proxy's relay differ"}, sentinel: client.ErrInconsistentConfigs},
		{name: "relay replaying an expired set", configs: relayBody(w.expired),
			want: []string{fmt.Sprintf("the proxy's relay holds %x", w.expiredKeyID)}, sentinel: client.ErrInconsistentConfigs},
	}
	for _, h3 := range []bool{false, true} {
		for _, tc := range testCases {
			t.Run(fmt.Sprintf("%s/h3=%v", tc.name, h3), func(t *testing.T) {
				connect := tc.connect
				if tc.prime {
					connect = replayTunnel(honestAddr) // a recording of its own
				}
				p := &rogue{connect: connect, configs: tc.configs}
				srv := w.serveRogue(t, p)
				if tc.prime {
					if err := exchange(t, newClient(t, w.config(rogueProxy, srv, h3, nil))); err != nil {
						t.Fatalf("honest first fetch: %v", err)
					}
				}
				before, posts := w.queries(), p.posts.Load()
				err := exchange(t, newClient(t, w.config(rogueProxy, srv, h3, nil)))
				if !errors.Is(err, client.ErrConfig) || tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
					t.Fatalf("err = %v, want ErrConfig (and %v)", err, tc.sentinel)
				}
				for _, s := range tc.want {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if client.Classify(err) == client.ReasonTransport {
					t.Errorf("error classified as %s", client.Classify(err))
				}
				if n := w.queries() - before; n != 0 || p.posts.Load() != posts {
					t.Errorf("%d queries decrypted, %d posted: a refused key was used", n, p.posts.Load()-posts)
				}
			})
		}
		if n := w.honest.RedirectHits.Load(); n != 0 {
			t.Errorf("%d redirects followed", n)
		}
		// The honest path answers, through the same targets.
		before := w.honest.Queries.Load()
		if err := exchange(t, newClient(t, w.config(honestProxy, w.psrv, h3, nil))); err != nil {
			t.Fatalf("honest proxy: %v", err)
		}
		if w.honest.Queries.Load() != before+1 || w.rogue.Queries.Load() != 0 || w.other.Queries.Load() != 0 {
			t.Error("the honest path did not reach the honest target alone")
		}
	}
}

// Configs through the relay alone, for a target with a key pin: whatever
// the relay answers, only the pinned key is used.
func TestRogueProxyRelayWithKeyPin(t *testing.T) {
	w := newWorld(t)
	testCases := []struct {
		name string
		body []byte
	}{
		{"its own configs", marshal(t, w.rogue.Config())},
		{"another target's configs", marshal(t, w.other.Config())},
		{"a flipped byte", flipped(marshal(t, w.honest.Config()))},
		{"an expired set", w.expired},
	}
	pinned := func(srv *odohtest.Server, name string) client.Config {
		cfg := w.config(name, srv, false, nil)
		cfg.ConfigSource = client.ConfigViaRelay
		cfg.Pins = []client.Pin{{Host: targetName, KeyID: w.honestKey}}
		return cfg
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			p := &rogue{configs: relayBody(tc.body)}
			srv := w.serveRogue(t, p)
			before := w.queries()
			err := exchange(t, newClient(t, pinned(srv, rogueProxy)))
			want := "configs of " + targetName + " has a pinned key ID: no match for the pins"
			if !errors.Is(err, client.ErrPinMismatch) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if client.Classify(err) != client.ReasonConfigsRefused {
				t.Errorf("classified as %s", client.Classify(err))
			}
			if w.queries() != before || p.posts.Load() != 0 || p.connects.Load() != 0 {
				t.Errorf("queries %d, posts %d, connects %d: want none", w.queries()-before, p.posts.Load(), p.connects.Load())
			}
		})
	}
	if err := exchange(t, newClient(t, pinned(w.psrv, honestProxy))); err != nil {
		t.Fatalf("honest relay with the pin: %v", err)
	}
}

// Configs from the target itself, or static: a proxy that would answer
// both configs paths with its own is never asked.
func TestRogueProxyOtherPaths(t *testing.T) {
	w := newWorld(t)
	own := marshal(t, w.rogue.Config())
	p := &rogue{connect: tunnelTo(w.rsrv.Addr), configs: relayBody(own)}
	srv := w.serveRogue(t, p)
	direct := w.config(rogueProxy, srv, false, nil)
	direct.ConfigSource = client.ConfigFromTarget
	static := w.config(rogueProxy, srv, false, nil)
	static.ConfigSource, static.StaticConfigs = client.ConfigStatic, marshal(t, w.honest.Config())
	for name, cfg := range map[string]client.Config{"target": direct, "static": static} {
		t.Run(name, func(t *testing.T) {
			if err := exchange(t, newClient(t, cfg)); err != nil {
				t.Fatal(err)
			}
			if p.connects.Load() != 0 || p.relays.Load() != 0 || w.rogue.Queries.Load() != 0 {
				t.Errorf("the rogue proxy was asked for configs (%d CONNECT, %d relay), or its key used", p.connects.Load(), p.relays.Load())
			}
		})
	}
	// Static configs are checked against key pins too.
	static.Pins = []client.Pin{{Host: targetName, KeyID: w.rogueKey}}
	if _, err := client.New(static); !errors.Is(err, client.ErrPinMismatch) {
		t.Errorf("static configs off their pin: err = %v", err)
	}
}

// Fetched the default way, configs reach the target from the proxy's
// address only: the target serves on 127.0.0.1 and [::1], the proxy
// dials 127.0.0.1, the client [::1]. Fetched from the target, they come
// from [::1]: the recording sees the difference.
func TestConfigsFetchedFromProxyAddress(t *testing.T) {
	w := newWorld(t)
	for _, h3 := range []bool{false, true} {
		if err := exchange(t, newClient(t, w.config(honestProxy, w.psrv, h3, nil))); err != nil {
			t.Fatal(err)
		}
	}
	peers := w.honest.ConfigPeers()
	if len(peers) < 2 { // the tunnel's, and the relay's (cached after)
		t.Fatalf("configs fetches %v", peers)
	}
	for _, p := range peers {
		if host, _, _ := net.SplitHostPort(p); host != "127.0.0.1" {
			t.Errorf("a configs fetch came from %s, not the proxy (127.0.0.1): %v", p, peers)
		}
	}
	cfg := w.config(honestProxy, w.psrv, false, nil)
	cfg.ConfigSource = client.ConfigFromTarget
	if err := exchange(t, newClient(t, cfg)); err != nil {
		t.Fatal(err)
	}
	peers = w.honest.ConfigPeers()
	if host, _, _ := net.SplitHostPort(peers[len(peers)-1]); host != "::1" {
		t.Errorf("a fetch from the target came from %s, want ::1 (the recording cannot tell)", peers[len(peers)-1])
	}
}

// A proxy that only forwards ODoH POSTs (as Cloudflare's odoh-server-go
// and RouteDNS do: no relay, no tunnel) is detected and named, its answer
// remembered for a backoff and logged once; no configs of its are used.
func TestProxyWithoutTunnel(t *testing.T) {
	w := newWorld(t)
	fwd := odohtest.NewProxy(w.ca, map[string]string{w.host(): w.hsrv.Addr})
	mux := http.NewServeMux()
	mux.Handle("/dns-query", fwd)
	mux.Handle("/proxy", fwd)
	srv := odohtest.Serve(t, w.ca, mux, rogueProxy)
	logs := &testlog.Buffer{}
	c := newClient(t, w.config(rogueProxy, srv, false, logs))
	var errs []error
	for range 3 {
		errs = append(errs, exchange(t, c))
	}
	want := fmt.Sprintf("target configs unavailable: CONNECT %s via https://%s:%s answered HTTP 404: proxy offers no configs tunnel",
		w.host(), rogueProxy, srv.Port())
	for i, err := range errs {
		if err == nil || err.Error() != want {
			t.Fatalf("query %d: err = %v\nwant %s", i, err, want)
		}
		if !errors.Is(err, client.ErrNoTunnel) || client.Classify(err) != client.ReasonNoTunnel {
			t.Errorf("query %d: not ErrNoTunnel: %v", i, err)
		}
	}
	if n := fwd.Requests.Load(); n != 0 {
		t.Errorf("%d queries posted without configs", n)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"fetching odoh configs failed"); n != 1 {
		t.Errorf("%d warnings for 3 queries, want 1:\n%s", n, logs)
	}
}

// Our own proxy with its tunnel switched off says 405: the same error.
func TestProxyTunnelDisabled(t *testing.T) {
	w := newWorld(t)
	h, err := proxy.New(proxy.Config{Policy: proxy.Policy{Allow: []string{w.hsrv.Addr}}, RootCAs: w.ca.Pool(), DisableTunnel: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	srv := odohtest.Serve(t, w.ca, h, rogueProxy)
	err = exchange(t, newClient(t, w.config(rogueProxy, srv, true, nil)))
	if !errors.Is(err, client.ErrNoTunnel) || !strings.Contains(err.Error(), "answered HTTP 405") {
		t.Fatalf("err = %v, want ErrNoTunnel after a 405", err)
	}
}

// taggingTarget publishes a key of its own at each fetch over HTTP/1.1
// (the tunnel's), and one shared key over HTTP/2 (the proxy's relay): a
// target trying to link a client's queries. It decrypts with any of them.
type taggingTarget struct {
	mu      sync.Mutex
	shared  *odoh.PrivateKey
	keys    map[string]*odoh.PrivateKey
	opened  atomic.Int64
	fetches atomic.Int64
}

func (tt *taggingTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case odoh.ConfigsPath:
		tt.fetches.Add(1)
		key := tt.shared
		if r.ProtoMajor == 1 {
			var err error
			if key, err = odoh.GenerateKey(odoh.DefaultSuite()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		tt.mu.Lock()
		tt.keys[string(key.KeyID())] = key
		tt.mu.Unlock()
		b, _ := odoh.MarshalConfigs(key.Config())
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write(b)
	default:
		body, _ := io.ReadAll(r.Body)
		m, err := odoh.ParseMessage(body)
		if err != nil {
			http.Error(w, "malformed", http.StatusBadRequest)
			return
		}
		tt.mu.Lock()
		key := tt.keys[string(m.KeyID)]
		tt.mu.Unlock()
		if key != nil {
			if _, err := key.OpenQuery(m); err == nil {
				tt.opened.Add(1)
			}
		}
		http.Error(w, "unused", http.StatusUnauthorized)
	}
}

// A target that hands the client a key of its own is caught by the relay's
// shared copy: ErrInconsistentConfigs, and the tagging key opens nothing.
// Two clients of an honest target behind one proxy use one key.
func TestKeyConsistency(t *testing.T) {
	w := newWorld(t)
	shared, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		t.Fatal(err)
	}
	tt := &taggingTarget{shared: shared, keys: map[string]*odoh.PrivateKey{}}
	tsrv := odohtest.Serve(t, w.ca, tt, taggingName)
	h, err := proxy.New(proxy.Config{
		Policy:   proxy.Policy{Allow: []string{taggingName + ":" + tsrv.Port()}, AllowSpecialAddrs: true},
		Resolver: testResolver(t, map[string]string{taggingName: "127.0.0.1"}), RootCAs: w.ca.Pool(),
		ClientRate: -1, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	psrv := odohtest.Serve(t, w.ca, h, honestProxy)
	cfg := w.config(honestProxy, psrv, false, nil)
	cfg.Targets = []string{"https://" + taggingName + ":" + tsrv.Port() + "/dns-query"}
	err = exchange(t, newClient(t, cfg))
	if !errors.Is(err, client.ErrInconsistentConfigs) || !strings.Contains(err.Error(), fmt.Sprintf("the proxy's relay holds %x for every client", shared.KeyID())) {
		t.Fatalf("err = %v, want ErrInconsistentConfigs naming the shared key", err)
	}
	if tt.opened.Load() != 0 || tt.fetches.Load() != 2 {
		t.Errorf("tagging target: %d queries opened, %d fetches (want 0 and 2)", tt.opened.Load(), tt.fetches.Load())
	}

	var ids [][]byte
	for range 2 {
		tcs, err := newClient(t, w.config(honestProxy, w.psrv, false, nil)).Configs(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tcs[0].Configs[0].KeyID())
	}
	if !bytes.Equal(ids[0], ids[1]) || !bytes.Equal(ids[0], w.honestKey) {
		t.Errorf("two clients behind one proxy use keys %x and %x", ids[0], ids[1])
	}
}

// At a key rotation the relay's shared copy may lag the tunnel's: with
// the real proxy, a client that fetches right after the target rotated
// (the relay still caching the old set) keeps the key it saw in both
// before, which the target still accepts, and checks again within
// ConsistencyWindow. A client with no such key cannot tell the new one
// from a key made for it alone: it refuses both sets until the relay
// catches up, and sends nothing.
func TestConsistencyAcrossRotation(t *testing.T) {
	w := newWorld(t)
	w.honest.MaxAge = 10
	w.honest.AcceptPrevious.Store(true)
	c := newClient(t, w.config(honestProxy, w.psrv, false, nil))
	if err := exchange(t, c); err != nil {
		t.Fatal(err)
	}
	old := w.honest.Config().KeyID()
	w.honest.Rotate(t) // the relay still holds the old configs for up to 10 s
	tcs, err := c.Configs(t.Context())
	if err != nil {
		t.Fatalf("right after a rotation: %v", err)
	}
	if got := tcs[0].Configs; len(got) != 1 || !bytes.Equal(got[0].KeyID(), old) || tcs[0].MaxAge > client.ConsistencyWindow {
		t.Errorf("right after a rotation: configs %v for %v, want the old key %x for at most %v", got, tcs[0].MaxAge, old, client.ConsistencyWindow)
	}
	before := w.honest.Queries.Load()
	if err := exchange(t, c); err != nil || w.honest.Queries.Load() != before+1 {
		t.Fatalf("with the old key: %v", err)
	}

	before = w.queries()
	fresh := newClient(t, w.config(honestProxy, w.psrv, false, nil))
	if err := exchange(t, fresh); !errors.Is(err, client.ErrInconsistentConfigs) {
		t.Fatalf("a new client right after a rotation: err = %v, want ErrInconsistentConfigs", err)
	}
	if w.queries() != before {
		t.Error("a query was sent")
	}
}

// Certificate pins apply inside the tunnel: the target's chain must hold a
// pinned TBSCertificate, given as a Pin or in a target stamp.
func TestTargetCertPin(t *testing.T) {
	w := newWorld(t)
	conn, err := tls.Dial("tcp", w.hsrv.Addr, &tls.Config{RootCAs: w.ca.Pool(), ServerName: targetName})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	_ = conn.Close()
	good := sha256.Sum256(leaf.RawTBSCertificate)
	bad := sha256.Sum256([]byte("another certificate"))
	for _, tc := range []struct {
		name string
		pin  []byte
		ok   bool
	}{{"leaf", good[:], true}, {"wrong", bad[:], false}} {
		for _, stamp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stamp=%v", tc.name, stamp), func(t *testing.T) {
				cfg := w.config(honestProxy, w.psrv, false, nil)
				if stamp {
					st := client.Stamp{Proto: client.StampODoHTarget, Host: w.host(), Path: "/dns-query", Hashes: [][]byte{tc.pin}}
					cfg.Targets = []string{st.String()}
				} else {
					cfg.Pins = []client.Pin{{Host: targetName, Cert: tc.pin}}
				}
				before := w.queries()
				err := exchange(t, newClient(t, cfg))
				if tc.ok {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if !errors.Is(err, client.ErrPinMismatch) || !strings.Contains(err.Error(), "certificate chain of "+targetName) {
					t.Fatalf("err = %v, want a pin mismatch", err)
				}
				if w.queries() != before {
					t.Error("a query was sent")
				}
			})
		}
	}
}

package client_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
	"github.com/odohd/odoh/proxy"
	"github.com/odohd/odoh/target"
)

const gatewayName = "gateway.ohttp.test"

// gateway is the real target's OHTTP gateway on loopback, wrapped to
// record what reaches it: each inner request (decapsulated with the
// target's own keys) and the key fetches.
type gateway struct {
	srv   *odohtest.Server
	keys  *target.Keyring
	h     atomic.Pointer[target.Handler]
	fetch atomic.Int64 // GETs of the key configuration
	// onGet, when set, runs at each GET before it is answered.
	onGet atomic.Pointer[func()]

	mu     sync.Mutex
	inner  []*bhttp.Request
	padded []int // plaintext lengths
}

func newGateway(t testing.TB, ca *testca.CA, now func() time.Time) *gateway {
	t.Helper()
	keys, err := target.NewKeyring(target.KeyringConfig{Seed: bytes.Repeat([]byte{7}, odoh.SeedSize), Period: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{keys: keys}
	g.srv = odohtest.Serve(t, ca, http.HandlerFunc(g.serve), gatewayName)
	zone, err := target.ParseZone(bytes.NewReader([]byte("$ORIGIN ohttp.test.\n$TTL 300\n@ IN SOA ns admin 1 3600 600 86400 60\nwww IN A 192.0.2.80\n")), "", "test")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := target.NewChain(target.ChainConfig{Zone: zone})
	if err != nil {
		t.Fatal(err)
	}
	// The authority includes the port, known only now: the handler is
	// published atomically before any request.
	h, err := target.New(target.Config{Keys: keys, Resolver: chain, Logger: slog.New(slog.DiscardHandler),
		OHTTP: target.OHTTPConfig{Authorities: []string{g.host()}}})
	if err != nil {
		t.Fatal(err)
	}
	g.h.Store(h)
	return g
}

func (g *gateway) host() string   { return gatewayName + ":" + g.srv.Port() }
func (g *gateway) origin() string { return "https://" + g.host() }

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	h := g.h.Load()
	if r.Method == http.MethodGet {
		g.fetch.Add(1)
		if f := g.onGet.Load(); f != nil {
			(*f)()
		}
	}
	if r.Method == http.MethodPost && r.URL.Path == target.OHTTPGatewayPath {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			if key := g.keys.LookupOHTTP(body[0]); key != nil {
				if plain, _, err := key.DecapsulateRequest(body); err == nil {
					if req, err := bhttp.ParseRequest(plain); err == nil {
						g.mu.Lock()
						g.inner = append(g.inner, req)
						g.padded = append(g.padded, len(plain))
						g.mu.Unlock()
					}
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	h.ServeHTTP(w, r)
}

func (g *gateway) lastInner(t *testing.T) (*bhttp.Request, int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.inner) == 0 {
		t.Fatal("no inner request reached the gateway")
	}
	return g.inner[len(g.inner)-1], g.padded[len(g.padded)-1]
}

// directTarget posts straight to the gateway and fetches its keys there:
// no relay, no privacy, but every byte of the protocol.
func (g *gateway) directTarget() client.OHTTPTarget {
	return client.OHTTPTarget{
		Relay: g.origin() + target.OHTTPGatewayPath,
		Keys:  g.origin() + target.OHTTPKeysPath,
		DoH:   g.origin() + odoh.QueryPath,
	}
}

func ohttpClient(t testing.TB, ca *testca.CA, g *gateway, h3 bool, o client.OHTTPTarget) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		OHTTP:             []client.OHTTPTarget{o},
		HTTP3:             h3,
		RootCAs:           ca.Pool(),
		Resolve:           map[string]string{g.host(): g.srv.Addr},
		AllowSameOperator: true, // the relay is the gateway here
		Timeout:           5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestOHTTPExchange(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		ca := testca.New(t)
		g := newGateway(t, ca, nil)
		c := ohttpClient(t, ca, g, h3, g.directTarget())
		q := query("www.ohttp.test", dns.TypeA)
		q.Id = 999
		r, err := c.Do(t.Context(), mustPack(t, q))
		if err != nil {
			t.Fatal(err)
		}
		a := new(dns.Msg)
		if err := a.Unpack(r.DNS); err != nil || a.Id != 999 || len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
			t.Fatalf("answer %v (%v)", a, err)
		}
		if r.Target != g.origin()+odoh.QueryPath || r.Proxy != g.origin()+target.OHTTPGatewayPath {
			t.Errorf("result target %q, proxy %q", r.Target, r.Proxy)
		}
		// The inner request is Firefox's: POST to the DoH URL with its
		// header set, DNS ID 0, padded to 128-byte blocks.
		in, n := g.lastInner(t)
		if in.Method != "POST" || in.Scheme != "https" || in.Authority != g.host() || in.Path != odoh.QueryPath {
			t.Errorf("inner request %s %s://%s%s", in.Method, in.Scheme, in.Authority, in.Path)
		}
		want := bhttp.Fields{
			{Name: "accept", Value: "application/dns-message"},
			{Name: "cache-control", Value: "no-store"},
			{Name: "accept-language", Value: ""},
			{Name: "user-agent", Value: ""},
			{Name: "content-type", Value: "application/dns-message"},
		}
		if len(in.Header) != len(want) {
			t.Fatalf("inner header %v, want %v", in.Header, want)
		}
		for i := range want {
			if in.Header[i] != want[i] {
				t.Errorf("inner header %d: %v, want %v", i, in.Header[i], want[i])
			}
		}
		if in.Content[0]|in.Content[1] != 0 || n%odoh.QueryBlockSize != 0 {
			t.Errorf("DNS ID %x%x, plaintext %d bytes", in.Content[0], in.Content[1], n)
		}
		// The keys are fetched once and cached.
		for range 3 {
			if _, err := c.Exchange(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
		if f := g.fetch.Load(); f != 1 {
			t.Errorf("%d key fetches for 4 queries, want 1", f)
		}
	})
}

// When the gateway rotates past the client's cached key, its ohttp-key
// problem makes the client fetch the keys again and retry once.
func TestOHTTPKeyRotation(t *testing.T) {
	ca := testca.New(t)
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).Truncate(time.Hour).UnixNano())
	g := newGateway(t, ca, func() time.Time { return time.Unix(0, now.Load()) })
	c := ohttpClient(t, ca, g, false, g.directTarget())
	q := query("www.ohttp.test", dns.TypeA)
	if _, err := c.Exchange(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour)) // the cached key is two epochs old now
	if _, err := c.Exchange(t.Context(), q); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if f := g.fetch.Load(); f != 2 {
		t.Errorf("%d key fetches, want 2", f)
	}
}

func TestOHTTPConfigRefused(t *testing.T) {
	ca := testca.New(t)
	g := newGateway(t, ca, nil)
	for _, o := range []client.OHTTPTarget{
		{Relay: "http://relay.test/", DoH: g.origin() + "/dns-query"},
		{Relay: g.origin() + "/r", DoH: g.origin()},
		{Relay: g.origin() + "/r", DoH: g.origin() + "/dns-query?dns=x"},
		{Relay: g.origin() + "/r", Keys: "https://u@k.test/", DoH: g.origin() + "/dns-query"},
	} {
		if _, err := client.New(client.Config{OHTTP: []client.OHTTPTarget{o}, AllowSameOperator: true}); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	// A relay and a gateway of one operator give no privacy.
	if _, err := client.New(client.Config{OHTTP: []client.OHTTPTarget{g.directTarget()}}); err == nil {
		t.Error("relay and gateway on one host accepted")
	}
	// A gateway that answers the DoH request with an error (here: a path
	// it does not serve) fails the query: the answer is encapsulated, not
	// DNS.
	o := g.directTarget()
	o.DoH = g.origin() + "/not-dns"
	c, err := client.New(client.Config{OHTTP: []client.OHTTPTarget{o}, RootCAs: ca.Pool(),
		Resolve: map[string]string{g.host(): g.srv.Addr}, AllowSameOperator: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Exchange(t.Context(), query("www.ohttp.test", dns.TypeA)); err == nil {
		t.Fatal("an encapsulated 404 passed for an answer")
	} else if !bytes.Contains([]byte(err.Error()), []byte("HTTP 404")) {
		t.Errorf("error %q does not name the gateway's status", err)
	}
}

const relayName = "relay.relay.test"

// relayWorld is the gateway behind the real relay (odoh-proxy's handler):
// the relay resolves the gateway's name to 127.0.0.1; the client knows
// only the relay's address, so any direct contact with the gateway fails.
type relayWorld struct {
	ca    *testca.CA
	g     *gateway
	relay *proxy.Handler
	front atomic.Pointer[http.Handler] // in front of the relay; tests may replace it
	psrv  *odohtest.Server
}

func newRelayWorld(t *testing.T, disableTunnel bool) *relayWorld {
	t.Helper()
	return newRelayWorldAt(t, disableTunnel, nil)
}

// newRelayWorldAt is newRelayWorld with the gateway's clock.
func newRelayWorldAt(t *testing.T, disableTunnel bool, now func() time.Time) *relayWorld {
	t.Helper()
	w := &relayWorld{ca: testca.New(t)}
	w.g = newGateway(t, w.ca, now)
	g := w.g
	var err error
	w.relay, err = proxy.New(proxy.Config{
		Policy:        proxy.Policy{Allow: []string{g.host()}, AllowSpecialAddrs: true},
		Resolver:      testResolver(t, map[string]string{gatewayName: "127.0.0.1"}),
		RootCAs:       w.ca.Pool(),
		ClientRate:    -1,
		DisableTunnel: disableTunnel,
		OHTTP:         []proxy.OHTTPRelay{{Gateway: g.origin() + target.OHTTPGatewayPath}},
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.relay.Close() })
	w.setFront(w.relay)
	w.psrv = odohtest.Serve(t, w.ca, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { (*w.front.Load()).ServeHTTP(rw, r) }), relayName)
	return w
}

func (w *relayWorld) setFront(h http.Handler) { w.front.Store(&h) }

func (w *relayWorld) relayURL() string {
	return "https://" + relayName + ":" + w.psrv.Port() + proxy.OHTTPPathPrefix + w.g.host()
}

func (w *relayWorld) client(t *testing.T, h3 bool) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		OHTTP:   []client.OHTTPTarget{{Relay: w.relayURL(), DoH: w.g.origin() + odoh.QueryPath}},
		HTTP3:   h3,
		RootCAs: w.ca.Pool(),
		Resolve: map[string]string{relayName + ":" + w.psrv.Port(): w.psrv.Addr},
		Timeout: 5 * time.Second,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Client → real relay → real gateway, over HTTP/2 and HTTP/3: the keys
// come from the gateway through the relay's tunnel and agree with the
// relay's shared copy; the gateway sees the relay, never the client.
func TestOHTTPThroughRelay(t *testing.T) {
	protos(t, func(t *testing.T, h3 bool) {
		w := newRelayWorld(t, false)
		c := w.client(t, h3)
		q := query("www.ohttp.test", dns.TypeA)
		for range 3 {
			a, err := c.Exchange(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Answer) != 1 || a.Answer[0].(*dns.A).A.String() != "192.0.2.80" {
				t.Fatalf("answer %v", a)
			}
		}
		in, _ := w.g.lastInner(t)
		if in.Authority != w.g.host() || in.Path != odoh.QueryPath {
			t.Errorf("inner request for %s%s", in.Authority, in.Path)
		}
		// One fetch through the tunnel, one by the relay for its copy.
		if f := w.g.fetch.Load(); f != 2 {
			t.Errorf("%d key fetches at the gateway, want 2 (tunnel and relay)", f)
		}
	})
}

// A relay that hands out keys of its own (to read the queries it relays)
// is caught: the client's tunnelled fetch from the gateway disagrees, and
// no query is encapsulated to the relay's key.
func TestOHTTPRelayForgedKeys(t *testing.T) {
	w := newRelayWorld(t, false)
	forged, err := ohttp.GenerateKey(uint8(w.g.keys.Epoch()), odoh.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := ohttp.MarshalKeyConfigs(forged.Config())
	var posts atomic.Int64
	w.setFront(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, proxy.OHTTPPathPrefix):
			rw.Header().Set("Content-Type", ohttp.KeysContentType)
			rw.Header().Set("Cache-Control", "max-age=3600")
			_, _ = rw.Write(body)
			return
		case r.Method == http.MethodPost:
			posts.Add(1)
		}
		w.relay.ServeHTTP(rw, r)
	}))
	c := w.client(t, false)
	_, err = c.Exchange(t.Context(), query("www.ohttp.test", dns.TypeA))
	if !errors.Is(err, client.ErrInconsistentConfigs) {
		t.Fatalf("forged relay keys: %v, want ErrInconsistentConfigs", err)
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("%d queries sent with unconfirmed keys", n)
	}
}

func TestOHTTPRelayWithoutTunnel(t *testing.T) {
	w := newRelayWorld(t, true)
	c := w.client(t, false)
	_, err := c.Exchange(t.Context(), query("www.ohttp.test", dns.TypeA))
	if !errors.Is(err, client.ErrNoTunnel) {
		t.Fatalf("relay without tunnel: %v, want ErrNoTunnel", err)
	}
}

// A relay whose shared copy of the keys does not answer (the gateway can
// fail the relay's fetches on purpose) leaves nothing to check the
// tunnel's keys against: they are not used alone.
func TestOHTTPRelayCopyMissing(t *testing.T) {
	w := newRelayWorld(t, false)
	var posts atomic.Int64
	w.setFront(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, proxy.OHTTPPathPrefix):
			http.Error(rw, "no copy", http.StatusBadGateway)
			return
		case r.Method == http.MethodPost:
			posts.Add(1)
		}
		w.relay.ServeHTTP(rw, r)
	}))
	c := w.client(t, false)
	_, err := c.Exchange(t.Context(), query("www.ohttp.test", dns.TypeA))
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("err = %v, want ErrConfig naming the relay's copy", err)
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("%d queries sent with unconfirmed keys", n)
	}
}

// Keys at the gateway's own origin (network.trr.ohttp.config_uri pointed
// at the gateway) with a relay on another host: each fetch shows the
// gateway the client's address, so none happens on the query path once the
// client has keys. After an ohttp-key problem the query fails at once and
// the keys are fetched later, in the background; before they expire they
// are refreshed with no query at all.
func TestOHTTPKeysAtGatewayOffQueryPath(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).Truncate(time.Hour).UnixNano())
	w := newRelayWorldAt(t, false, func() time.Time { return time.Unix(0, now.Load()) })
	newClient := func(refresh func(time.Duration) time.Duration) *client.Client {
		c, err := client.New(client.Config{
			OHTTP:   []client.OHTTPTarget{{Relay: w.relayURL(), Keys: w.g.origin() + target.OHTTPKeysPath, DoH: w.g.origin() + odoh.QueryPath}},
			RootCAs: w.ca.Pool(),
			Resolve: map[string]string{relayName + ":" + w.psrv.Port(): w.psrv.Addr, w.g.host(): w.g.srv.Addr},
			Timeout: 5 * time.Second,
			Logger:  slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		client.SetFetchDelays(c, refresh, func() time.Duration { return 0 })
		return c
	}
	// Each successful fetch schedules the next one: that is the signal
	// that new keys are in place.
	fetched := make(chan struct{}, 8)
	c := newClient(func(time.Duration) time.Duration { fetched <- struct{}{}; return time.Hour })
	q := query("www.ohttp.test", dns.TypeA)
	if _, err := c.Exchange(t.Context(), q); err != nil {
		t.Fatal(err) // the first query waits for the first fetch
	}
	<-fetched
	if f := w.g.fetch.Load(); f != 1 {
		t.Fatalf("%d key fetches at the gateway, want 1 (the client's, direct)", f)
	}

	// The gateway rotates past the cached key. The background fetch the
	// refusal starts is held at the gateway until the query has failed.
	now.Add(int64(2 * time.Hour))
	gate, arrived := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	hold := func() { arrived <- struct{}{}; <-gate }
	w.g.onGet.Store(&hold)
	_, err := c.Exchange(t.Context(), q)
	if !errors.Is(err, odoh.ErrKeyMismatch) || !strings.Contains(err.Error(), "background") {
		t.Fatalf("query with refused keys: %v, want odoh.ErrKeyMismatch, keys fetched in the background", err)
	}
	<-arrived // the refetch comes after the query, on its own
	w.g.onGet.Store(nil)
	release()
	<-fetched
	if _, err := c.Exchange(t.Context(), q); err != nil {
		t.Fatalf("with the refetched keys: %v", err)
	}
	if f := w.g.fetch.Load(); f != 2 {
		t.Errorf("%d key fetches at the gateway, want 2", f)
	}

	// Before they expire, the keys are fetched again with no query.
	var first atomic.Bool
	first.Store(true)
	c = newClient(func(time.Duration) time.Duration {
		fetched <- struct{}{}
		if first.Swap(false) {
			return 0 // "at 80 to 90% of the max-age": now
		}
		return time.Hour
	})
	before := w.g.fetch.Load()
	if _, err := c.Exchange(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	<-fetched
	<-fetched
	if f := w.g.fetch.Load() - before; f != 2 {
		t.Errorf("%d key fetches for one query, want 2 (the query's, then the refresh)", f)
	}
}

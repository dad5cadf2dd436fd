package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/vocabtest"
	"github.com/odohd/odoh/odoh"
)

// TestConfigsRelay checks that the proxy fetches a target's configs once
// for all clients, caches them for the target's max-age, and relays only
// for allowed targets.
func TestConfigsRelay(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	configs := testConfigs(t)
	var fetches atomic.Int32
	gate := make(chan struct{})
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != odoh.ConfigsPath || r.Method != http.MethodGet {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		fetches.Add(1)
		<-gate
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Set-Cookie", "x=1")
		_, _ = w.Write(configs)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	u := tp.base + odoh.ConfigsPath + "?targethost=" + tgt.hostPort()

	// Concurrent misses share one fetch.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, u, nil))
			if resp.StatusCode != 200 || !bytes.Equal(body, configs) {
				t.Errorf("configs: %d %x", resp.StatusCode, body)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	// And later requests are served from the cache, over h3 too.
	resp, body := do(t, tp.h3, mustRequest(t, http.MethodGet, u, nil))
	if resp.StatusCode != 200 || !bytes.Equal(body, configs) {
		t.Fatalf("cached configs: %d %x", resp.StatusCode, body)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("target fetched %d times, want 1", n)
	}
	cc := resp.Header.Get("Cache-Control")
	age, err := strconv.Atoi(strings.TrimPrefix(cc, "max-age="))
	if err != nil || age <= 0 || age > 60 {
		t.Errorf("Cache-Control = %q, want max-age in (0, 60]", cc)
	}
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	for _, r := range tgt.requests() {
		if r.header.Get("User-Agent") != DefaultUserAgent || r.header.Get("Cookie") != "" {
			t.Errorf("configs fetch headers %v", r.header)
		}
	}

	for _, tc := range []struct {
		name, url, method string
		status            int
		kind              odoh.ProxyError
	}{
		{"not allowed", tp.base + odoh.ConfigsPath + "?targethost=other.example", http.MethodGet, 403, odoh.ProxyHTTPRequestDenied},
		{"no targethost", tp.base + odoh.ConfigsPath, http.MethodGet, 400, odoh.ProxyHTTPRequestError},
		{"bad targethost", tp.base + odoh.ConfigsPath + "?targethost=a@b", http.MethodGet, 400, odoh.ProxyHTTPRequestError},
		{"POST", u, http.MethodPost, 405, odoh.ProxyHTTPRequestError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := do(t, tp.h2, mustRequest(t, tc.method, tc.url, nil))
			wantProxyStatus(t, resp, tc.status, tc.kind)
		})
	}
}

// TestConfigsRelayFailure checks that a failing target gives a 502 and
// that the failure is not cached.
func TestConfigsRelayFailure(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	configs := testConfigs(t)
	var fail atomic.Bool
	fail.Store(true)
	tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(configs)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ConfigsMinAge: 30 * time.Second})
	u := tp.base + odoh.ConfigsPath + "?targethost=" + tgt.hostPort()
	resp, _ := do(t, clientFrom(t, ca, "127.0.0.2"), mustRequest(t, http.MethodGet, u, nil))
	wantProxyStatus(t, resp, 502, odoh.ProxyHTTPProtocolError)
	// The operator learns why, at warn level, and nothing about the client.
	logs := tp.logs.String()
	if !strings.Contains(logs, `level=WARN msg="could not forward to a target" target=`+tgt.hostPort()) ||
		!strings.Contains(logs, "proxy_status="+string(odoh.ProxyHTTPProtocolError)) || !strings.Contains(logs, `err="configs status 503"`) {
		t.Errorf("configs fetch failure not logged at warn:\n%s", logs)
	}
	if strings.Contains(logs, "127.0.0.2") {
		t.Errorf("client address logged:\n%s", logs)
	}
	fail.Store(false)
	resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, u, nil))
	if resp.StatusCode != 200 || !bytes.Equal(body, configs) {
		t.Fatalf("after recovery: %d %x", resp.StatusCode, body)
	}
	// no-store from the target still gets the minimum age.
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=30" && cc != "max-age=29" {
		t.Errorf("Cache-Control = %q, want the 30s minimum", cc)
	}
}

// TestConfigsMaxAge runs the shared table of the Cache-Control rule
// (internal/vocabtest) through the proxy's configs cache: what the proxy
// keeps a target's configs for is odoh.MaxAge for a shared cache, clamped
// to [ConfigsMinAge, ConfigsMaxAge], and ConfigsMinAge without a lifetime.
func TestConfigsMaxAge(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	configs := testConfigs(t)
	var cacheControl atomic.Pointer[[]string]
	tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header()["Cache-Control"] = *cacheControl.Load()
		_, _ = w.Write(configs)
	})
	const minAge, maxAge = 10 * time.Second, time.Hour
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ConfigsMinAge: minAge, ConfigsMaxAge: maxAge})
	u := tp.base + odoh.ConfigsPath + "?targethost=" + tgt.hostPort()
	for _, tc := range vocabtest.MaxAgeCases {
		t.Run(tc.Name, func(t *testing.T) {
			tp.h.configs.purge()
			cacheControl.Store(&tc.CacheControl)
			resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, u, nil))
			if resp.StatusCode != 200 || !bytes.Equal(body, configs) {
				t.Fatalf("configs: %d %x", resp.StatusCode, body)
			}
			var lifetime time.Duration
			tp.h.configs.mu.Lock()
			for _, e := range tp.h.configs.m {
				lifetime = e.expires.Sub(e.fetched)
			}
			tp.h.configs.mu.Unlock()
			if want := vocabtest.Clamp(tc.Shared, minAge, minAge, maxAge); lifetime != want {
				t.Errorf("Cache-Control %q: cached for %v, want %v", tc.CacheControl, lifetime, want)
			}
		})
	}
}

// testConfigs returns a well-framed ObliviousDoHConfigs body with one
// fresh config.
func testConfigs(t testing.TB) []byte {
	t.Helper()
	k, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		t.Fatal(err)
	}
	b, err := odoh.MarshalConfigs(k.Config())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gatedConfigsTarget starts a target whose configs answer waits for gate
// to close.
func gatedConfigsTarget(t *testing.T, ca *testca.CA, body []byte, gate <-chan struct{}) *recordingTarget {
	t.Helper()
	tgt := startTarget(t, ca.ServerTLS(t))
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		<-gate
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(body)
	})
	return tgt
}

// TestConfigsFetchCap: configs fetches are bounded (MaxConfigsFetches), and
// a miss never grows the cache past MaxCachedConfigs even when every entry
// is still being fetched; both refusals are 503 with Proxy-Status and
// Retry-After, and the cache recovers once fetches end. Before, each miss
// started another detached fetch and the cache grew without bound.
func TestConfigsFetchCap(t *testing.T) {
	for _, tc := range []struct {
		name                string
		maxFetches, maxSize int
	}{
		{"fetch cap", 1, 0},
		{"cache full of fetches", 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := testca.New(t)
			body := testConfigs(t)
			gate := make(chan struct{})
			var once sync.Once
			release := func() { once.Do(func() { close(gate) }) }
			a := gatedConfigsTarget(t, ca, body, gate)
			t.Cleanup(release) // before the target closes, even on failure
			open := make(chan struct{})
			close(open)
			b := gatedConfigsTarget(t, ca, body, open)
			tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{a.hostPort(), b.hostPort()}},
				MaxConfigsFetches: tc.maxFetches, MaxCachedConfigs: tc.maxSize})
			uA := tp.base + odoh.ConfigsPath + "?targethost=" + a.hostPort()
			uB := tp.base + odoh.ConfigsPath + "?targethost=" + b.hostPort()

			done := make(chan *http.Response, 1)
			go func() {
				resp, _ := do(t, tp.h2, mustRequest(t, http.MethodGet, uA, nil))
				done <- resp
			}()
			waitFor(t, "the parked fetch", func() bool { return len(a.requests()) == 1 })
			resp, _ := do(t, tp.h2, mustRequest(t, http.MethodGet, uB, nil))
			wantProxyStatus(t, resp, http.StatusServiceUnavailable, odoh.ProxyHTTPRequestDenied)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After on 503")
			}
			if n := len(b.requests()); n != 0 {
				t.Errorf("refused miss still reached the target (%d requests)", n)
			}
			tp.h.configs.mu.Lock()
			size, fetching := len(tp.h.configs.m), tp.h.configs.fetching
			tp.h.configs.mu.Unlock()
			if size != 1 || fetching != 1 {
				t.Errorf("cache holds %d entries, %d fetching; want 1, 1", size, fetching)
			}

			release()
			if resp := <-done; resp.StatusCode != http.StatusOK {
				t.Fatalf("parked configs request: %d", resp.StatusCode)
			}
			resp, got := do(t, tp.h2, mustRequest(t, http.MethodGet, uB, nil))
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("after the fetch ended: %d", resp.StatusCode)
			}
			tp.h.configs.mu.Lock()
			size, fetching = len(tp.h.configs.m), tp.h.configs.fetching
			tp.h.configs.mu.Unlock()
			if tc.maxSize > 0 && size > tc.maxSize || fetching != 0 {
				t.Errorf("cache holds %d entries (max %d), %d fetching", size, tc.maxSize, fetching)
			}
		})
	}
}

// TestConfigsRelayChecksBody: the relay serves only what is a well-framed
// ObliviousDoHConfigs list, always as application/octet-stream with
// nosniff, whatever type the target claims; a list of configs this proxy
// cannot use is still relayed (clients may support more), anything else is
// a 502 http_protocol_error. Before, a target's text/html page was relayed
// as text/html from the proxy's origin.
func TestConfigsRelayChecksBody(t *testing.T) {
	good := testConfigs(t)
	for _, tc := range []struct {
		name, ctype string
		body        []byte
		ok          bool
	}{
		{"configs typed as html", "text/html", good, true},
		{"unsupported version", "text/html", []byte("\x00\x08\xff\xff\x00\x04<b>x"), true},
		{"html page", "text/html", []byte("<html><script>alert(1)</script></html>"), false},
		{"outer length wrong", "application/octet-stream", append(bytes.Clone(good), 0), false},
		{"truncated", "application/octet-stream", good[:len(good)-1], false},
		{"empty list", "application/octet-stream", []byte{0, 0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := testca.New(t)
			tgt := startTarget(t, ca.ServerTLS(t))
			tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.Header().Set("Content-Type", tc.ctype)
				_, _ = w.Write(tc.body)
			})
			tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
			resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, tp.base+odoh.ConfigsPath+"?targethost="+tgt.hostPort(), nil))
			if !tc.ok {
				wantProxyStatus(t, resp, http.StatusBadGateway, odoh.ProxyHTTPProtocolError)
				if bytes.Contains(body, []byte("script")) {
					t.Errorf("refused body relayed: %q", body)
				}
				return
			}
			wantProxyStatus(t, resp, http.StatusOK, relayed)
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %x, want %x", body, tc.body)
			}
			if ct, nos := resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"); ct != "application/octet-stream" || nos != "nosniff" {
				t.Errorf("Content-Type %q, X-Content-Type-Options %q", ct, nos)
			}
		})
	}
}

// TestConfigsRefreshAfter401: after a target changes its keys, its 401 to
// a relayed query drops the proxy's cached configs, so a client refreshing
// through the relay gets the new ones rather than the stale ones for up to
// ConfigsMaxAge; configs younger than ConfigsMinAge are kept, so 401s
// cannot make the proxy refetch more often than that.
func TestConfigsRefreshAfter401(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	oldCfg, newCfg := testConfigs(t), testConfigs(t)
	var current atomic.Pointer[[]byte]
	current.Store(&oldCfg)
	var fetches atomic.Int32
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == odoh.ConfigsPath {
			fetches.Add(1)
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(*current.Load())
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized) // every query uses an old key now
	})
	const minAge = 30 * time.Second
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ConfigsMinAge: minAge})
	clock := newTestClock()
	tp.h.configs.now = clock.now // before any request
	cfgURL := tp.base + odoh.ConfigsPath + "?targethost=" + tgt.hostPort()
	getConfigs := func() []byte {
		t.Helper()
		resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, cfgURL, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("configs: %d", resp.StatusCode)
		}
		return body
	}
	query := func() {
		t.Helper()
		resp, _ := post(t, tp.h2, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q"), nil)
		wantProxyStatus(t, resp, http.StatusUnauthorized, relayed)
	}

	if !bytes.Equal(getConfigs(), oldCfg) {
		t.Fatal("first configs are not the target's")
	}
	current.Store(&newCfg) // the target's seed changes

	// A 401 within ConfigsMinAge of the fetch keeps the configs: no
	// refetch storm.
	clock.advance(minAge - time.Second)
	query()
	if !bytes.Equal(getConfigs(), oldCfg) || fetches.Load() != 1 {
		t.Fatalf("configs refetched within ConfigsMinAge (%d fetches)", fetches.Load())
	}

	// Past it, a 401 drops them and the next client gets the new ones.
	clock.advance(time.Second)
	query()
	if got := getConfigs(); !bytes.Equal(got, newCfg) || fetches.Load() != 2 {
		t.Fatalf("after a 401 the relay still serves the stale configs (%d fetches)", fetches.Load())
	}
	// More 401s from clients still on the old key do not refetch again.
	clock.advance(minAge - time.Second)
	query()
	query()
	if !bytes.Equal(getConfigs(), newCfg) {
		t.Error("new configs lost")
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d configs fetches, want 2", n)
	}
}

// testClock is a clock that moves only when told to.
type testClock struct{ t atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.t.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *testClock) advance(d time.Duration) { c.t.Add(int64(d)) }

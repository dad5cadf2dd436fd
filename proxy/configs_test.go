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
)

// TestConfigsRelay checks that the proxy fetches a target's configs once
// for all clients, caches them for the target's max-age, and relays only
// for allowed targets.
func TestConfigsRelay(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	configs := []byte{0x00, 0x2c, 0x00, 0x01, 0x00, 0x28, 0x00, 0x20}
	var fetches atomic.Int32
	gate := make(chan struct{})
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != ConfigsPath || r.Method != http.MethodGet {
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
	u := tp.base + ConfigsPath + "?targethost=" + tgt.hostPort()

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
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Content-Type") != "application/octet-stream" {
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
		kind              string
	}{
		{"not allowed", tp.base + ConfigsPath + "?targethost=other.example", http.MethodGet, 403, errRequestDenied},
		{"no targethost", tp.base + ConfigsPath, http.MethodGet, 400, errRequestError},
		{"bad targethost", tp.base + ConfigsPath + "?targethost=a@b", http.MethodGet, 400, errRequestError},
		{"POST", u, http.MethodPost, 405, errRequestError},
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
	var fail atomic.Bool
	fail.Store(true)
	tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte{0, 1, 2})
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ConfigsMinAge: 30 * time.Second})
	u := tp.base + ConfigsPath + "?targethost=" + tgt.hostPort()
	resp, _ := do(t, tp.h2, mustRequest(t, http.MethodGet, u, nil))
	wantProxyStatus(t, resp, 502, errProtocol)
	fail.Store(false)
	resp, body := do(t, tp.h2, mustRequest(t, http.MethodGet, u, nil))
	if resp.StatusCode != 200 || !bytes.Equal(body, []byte{0, 1, 2}) {
		t.Fatalf("after recovery: %d %x", resp.StatusCode, body)
	}
	// no-store from the target still gets the minimum age.
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=30" && cc != "max-age=29" {
		t.Errorf("Cache-Control = %q, want the 30s minimum", cc)
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"max-age=60", 60, true},
		{"public, MAX-AGE=5", 5, true},
		{"no-store", 0, false},
		{"max-age=60, no-cache", 0, false},
		{"max-age=-1", 0, false},
		{"max-age=x", 0, false},
		{"", 0, false},
	} {
		got, ok := maxAge(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("maxAge(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

package client_test

// Attacks of a target on key consistency (see client.ConfigViaTunnel): a
// target that wants to link one client's queries hands that client a key
// of its own through the tunnel, and tries every way to keep the relay's
// shared copy from catching it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
)

// tagger is a target that tells the client's tunnelled fetches (HTTP/1.1,
// in the client's own TLS session) from the proxy's relay fetches
// (HTTP/2, the proxy's pooled connection), as any target can, and answers
// each its own way. It answers queries sealed to any key it handed out,
// counting those sealed to a tag.
type tagger struct {
	shared *odoh.PrivateKey
	// tag decides, for the n-th tunnelled fetch (from 1), whether it gets
	// a key of its own; nil: always.
	tag func(n int64) bool
	// maxAge is the configs' max-age for both kinds of fetch.
	maxAge int
	// failRelay answers the proxy's relay fetches 500.
	failRelay bool

	mu      sync.Mutex
	tags    map[string]*odoh.PrivateKey
	tunnels atomic.Int64
	relays  atomic.Int64
	// tagged and sharedQ count the queries opened with a tag, and with the
	// shared key.
	tagged, sharedQ atomic.Int64
}

func newTagger(t *testing.T) *tagger {
	t.Helper()
	shared, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		t.Fatal(err)
	}
	return &tagger{shared: shared, maxAge: 3600, tags: map[string]*odoh.PrivateKey{}}
}

func (tt *tagger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == odoh.ConfigsPath {
		tt.configs(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m, err := odoh.ParseMessage(body)
	if err != nil {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	tt.mu.Lock()
	key, tagged := tt.tags[string(m.KeyID)]
	tt.mu.Unlock()
	if !tagged {
		key = tt.shared
	}
	q, err := key.OpenQuery(m)
	if err != nil {
		http.Error(w, "key", http.StatusUnauthorized)
		return
	}
	if tagged {
		tt.tagged.Add(1)
	} else {
		tt.sharedQ.Add(1)
	}
	answer, err := odohtest.Answer(q.DNS)
	if err == nil {
		var resp []byte
		if resp, err = q.SealResponse(answer); err == nil {
			w.Header().Set("Content-Type", odoh.ContentType)
			_, _ = w.Write(resp)
			return
		}
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (tt *tagger) configs(w http.ResponseWriter, r *http.Request) {
	key := tt.shared
	if r.ProtoMajor == 1 {
		n := tt.tunnels.Add(1)
		if tt.tag == nil || tt.tag(n) {
			var err error
			if key, err = odoh.GenerateKey(odoh.DefaultSuite()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			tt.mu.Lock()
			tt.tags[string(key.KeyID())] = key
			tt.mu.Unlock()
		}
	} else {
		tt.relays.Add(1)
		if tt.failRelay {
			http.Error(w, "not for proxies", http.StatusInternalServerError)
			return
		}
	}
	b, _ := odoh.MarshalConfigs(key.Config())
	w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", tt.maxAge))
	_, _ = w.Write(b)
}

// behindProxy serves tt under taggingName behind a real proxy and returns a client config of
// it through that proxy.
func (w *world) behindProxy(t *testing.T, tt http.Handler) client.Config {
	t.Helper()
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
	return cfg
}

// A target that fails the proxy's relay fetches, so that no shared copy
// exists to compare with, does not get its tag used: the client refuses
// to use a key that no relay confirmed.
func TestKeyConsistencyRelayFailedByTarget(t *testing.T) {
	w := newWorld(t)
	tt := newTagger(t)
	tt.failRelay = true
	cfg := w.behindProxy(t, tt)
	err := exchange(t, newClient(t, cfg))
	if !errors.Is(err, client.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	if tt.tagged.Load() != 0 || tt.relays.Load() == 0 {
		t.Errorf("%d queries sealed to a tag (%d relay fetches)", tt.tagged.Load(), tt.relays.Load())
	}
}

// A target whose configs all have a short max-age makes every
// disagreement look like a key rotation in progress. It still gets no tag
// used: not on a client's first fetch, and not by alternating tags with
// its shared key so that each tag follows an agreement.
func TestKeyConsistencyShortMaxAge(t *testing.T) {
	w := newWorld(t)
	t.Run("first fetch", func(t *testing.T) {
		tt := newTagger(t)
		tt.maxAge = 60
		c := newClient(t, w.behindProxy(t, tt))
		err := exchange(t, c)
		if !errors.Is(err, client.ErrInconsistentConfigs) {
			t.Errorf("err = %v, want ErrInconsistentConfigs", err)
		}
		if tt.tagged.Load() != 0 {
			t.Errorf("%d queries sealed to a tag", tt.tagged.Load())
		}
	})
	t.Run("alternating", func(t *testing.T) {
		tt := newTagger(t)
		tt.maxAge = 60
		tt.tag = func(n int64) bool { return n%2 == 0 } // shared, tag, shared, tag…
		c := newClient(t, w.behindProxy(t, tt))
		for i := range 6 {
			// Configs (as the CLI's "odoh configs") fetches now, as the
			// client does when its configs expire.
			if _, err := c.Configs(t.Context()); err != nil {
				t.Errorf("fetch %d: %v", i+1, err)
			}
			if err := exchange(t, c); err != nil {
				t.Errorf("query %d: %v", i+1, err)
			}
		}
		if tt.tagged.Load() != 0 {
			t.Errorf("%d of %d queries sealed to a tag", tt.tagged.Load(), tt.tagged.Load()+tt.sharedQ.Load())
		}
		if tt.sharedQ.Load() != 6 {
			t.Errorf("%d queries with the shared key, want 6", tt.sharedQ.Load())
		}
	})
}

// A relay outage costs a client nothing while the target still publishes
// the key that the client already found in both sets; a client without
// such a key is refused until the relay answers.
func TestKeyConsistencyRelayOutage(t *testing.T) {
	w := newWorld(t)
	var down atomic.Bool
	p := &rogue{}
	p.configs = func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		p.honest.ServeHTTP(rw, r)
	}
	srv := w.serveRogue(t, p)
	c := newClient(t, w.config(rogueProxy, srv, false, nil))
	if err := exchange(t, c); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	tcs, err := c.Configs(t.Context())
	if err != nil {
		t.Fatalf("relay down, key agreed before: %v", err)
	}
	if got := tcs[0].Configs; len(got) != 1 || !bytes.Equal(got[0].KeyID(), w.honestKey) || tcs[0].MaxAge > client.ConsistencyWindow {
		t.Errorf("relay down: configs %v for %v, want key %x for at most %v", got, tcs[0].MaxAge, w.honestKey, client.ConsistencyWindow)
	}
	if err := exchange(t, c); err != nil {
		t.Fatal(err)
	}
	before := w.queries()
	err = exchange(t, newClient(t, w.config(rogueProxy, srv, false, nil)))
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "the proxy's config relay did not answer") {
		t.Fatalf("a new client, relay down: err = %v", err)
	}
	if w.queries() != before {
		t.Error("a query was sent")
	}
}

package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/odoh"
)

// Background fetches fall between 80% and 90% of the configs' lifetime,
// within RefetchDelay after a 401, and back off to at most 5 minutes.
func TestFetchDelays(t *testing.T) {
	for _, ttl := range []time.Duration{MinConfigTTL, time.Hour, MaxConfigTTL} {
		for range 200 {
			if d := refreshDelay(ttl); d < ttl*8/10 || d > ttl*9/10 {
				t.Fatalf("refresh of a %v config after %v", ttl, d)
			}
		}
	}
	for range 200 {
		if d := refetchDelay(); d <= 0 || d > RefetchDelay {
			t.Fatalf("refetch after %v", d)
		}
	}
	for n := 1; n < 100; n++ {
		if d := failureDelay(n); d < MinConfigTTL/2 || d > 5*time.Minute {
			t.Fatalf("backoff %d: %v", n, d)
		}
	}
}

// countingSource hands out a fresh one-hour config set at each fetch and
// counts the fetches.
type countingSource struct {
	cfg     *odoh.Config
	fetches atomic.Int64
}

func (s *countingSource) fetch(context.Context, *target, int) (*configSet, error) {
	s.fetches.Add(1)
	return &configSet{cfg: s.cfg, all: []*odoh.Config{s.cfg}, expires: time.Now().Add(time.Hour), maxAge: time.Hour}, nil
}

// With configs from the target and a proxy, background fetches keep the
// configs fresh with no query at all, at the delay refreshIn picks for
// their lifetime; Close stops them: none starts after it, however long
// the client lives on. The clock is synctest's, so the counts are exact.
func TestBackgroundFetchesStopAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := odoh.GenerateKey(odoh.DefaultSuite())
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{
			Proxies:      []string{"https://relay.example/dns-query{?targethost,targetpath}"},
			Targets:      []string{"https://odoh.test/dns-query"},
			ConfigSource: ConfigFromTarget,
			Logger:       slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		src := &countingSource{cfg: k.Config()}
		c.configs.source = src
		c.configs.refreshIn = func(ttl time.Duration) time.Duration {
			if ttl != time.Hour {
				t.Errorf("background fetch for a lifetime of %v, want the configs' 1h", ttl)
			}
			return 20 * time.Millisecond
		}
		if _, err := c.configs.get(t.Context(), c.targets[0], 0); err != nil {
			t.Fatal(err)
		}
		// The first fetch, then one every 20 ms: at 20, 40, …, 1000 ms.
		time.Sleep(time.Second + 10*time.Millisecond)
		if n := src.fetches.Load(); n != 51 {
			t.Errorf("%d fetches in a second, want 51 (the first, then one every 20 ms)", n)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		closed := src.fetches.Load()
		time.Sleep(time.Hour)
		if n := src.fetches.Load(); n != closed {
			t.Errorf("%d config fetches in the hour after Close, want none", n-closed)
		}
	})
}

// hangingSource is a configs source that never answers: its fetch fails
// when its own deadline comes, in its own words.
type hangingSource struct{}

func (hangingSource) fetch(ctx context.Context, t *target, _ int) (*configSet, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("%w: TLS with target %s: %w", ErrConfig, t.url.Host, ctx.Err())
}

// A query whose deadline comes while its configs are fetched says so,
// even when the fetch (which has the same timeout) fails at the same
// moment and its error is there first. On synctest's clock both
// deadlines fall on one instant, as they nearly do on a loaded machine,
// and which of the two is seen first varies from run to run.
func TestConfigsDeadlineNamedWhenFetchFailsWithIt(t *testing.T) {
	deadlineNamedWhenFetchHangs(t, func(ctx context.Context, c *Client) error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		_, err := c.configs.get(ctx, c.targets[0], 0)
		return err
	})
}

// The same through Do: a query that ends while its configs are fetched
// is not tried again, even when its context's timer has yet to run as
// the fetch's error arrives. A retry would have found the fetch's failure
// remembered and returned that, without the deadline (interop
// TestCLITargetNeverAnswers saw it under load).
func TestDoDeadlineNamedWhenConfigsFetchFailsWithIt(t *testing.T) {
	wire, err := new(dns.Msg).SetQuestion("www.example.test.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	deadlineNamedWhenFetchHangs(t, func(ctx context.Context, c *Client) error {
		_, err := c.Do(ctx, wire)
		return err
	})
}

// deadlineNamedWhenFetchHangs runs ask 50 times on synctest's clock, each
// with a new client whose configs source never answers, and wants every
// error to name the query's deadline.
func deadlineNamedWhenFetchHangs(t *testing.T, ask func(context.Context, *Client) error) {
	for i := range 50 {
		synctest.Test(t, func(t *testing.T) {
			c, err := New(Config{
				Proxies:      []string{"https://relay.example/dns-query{?targethost,targetpath}"},
				Targets:      []string{"https://odoh.test/dns-query"},
				ConfigSource: ConfigFromTarget,
				Timeout:      500 * time.Millisecond,
				Logger:       slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.configs.source = hangingSource{}
			err = ask(t.Context(), c)
			if !errors.Is(err, ErrConfig) || !errors.Is(err, context.DeadlineExceeded) ||
				!strings.Contains(err.Error(), "the query's deadline came while fetching the configs of target odoh.test") {
				t.Fatalf("run %d: %v; want the query's deadline named", i, err)
			}
		})
	}
}

// hangingTransport never answers: a request fails when its context ends.
type hangingTransport struct{}

func (hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// The same for OHTTP keys: a query whose deadline comes while the keys are
// fetched says that it was waiting for them, whichever failure it saw
// first.
func TestOHTTPKeysDeadlineNamedWhenFetchFailsWithIt(t *testing.T) {
	for i := range 50 {
		synctest.Test(t, func(t *testing.T) {
			c, err := New(Config{
				OHTTP: []OHTTPTarget{{Relay: "https://relay.example/ohttp/dns.example",
					Keys: "https://dns.example/.well-known/ohttp-gateway", DoH: "https://dns.example/dns-query"}},
				Timeout: 500 * time.Millisecond,
				Logger:  slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.hc.Transport = hangingTransport{}
			ctx, cancel := context.WithTimeout(t.Context(), c.timeout)
			defer cancel()
			_, err = c.ohttpKeys(ctx, c.ohttp[0], nil)
			if !errors.Is(err, ErrConfig) || !errors.Is(err, context.DeadlineExceeded) ||
				!strings.Contains(err.Error(), "waiting for OHTTP keys") {
				t.Fatalf("run %d: %v; want the query's deadline named", i, err)
			}
		})
	}
}

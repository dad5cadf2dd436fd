package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/odoh"
)

// TestProxyStatusFieldLines: a Proxy-Status sent as several field lines is
// one list (RFC 9110 §5.3), whose last member is the proxy closest to the
// client (RFC 9209 §2). Here an intermediary before the proxy says it
// could not reach the target, on the first line, and the proxy itself, on
// the second, refused the request: the error holds both members, and the
// client blames the proxy, which it avoids from then on, not the target.
func TestProxyStatusFieldLines(t *testing.T) {
	const (
		inner = `relay-b; error=connection_refused`
		outer = `odoh-proxy; error=http_request_denied; details="busy"`
	)
	s := newStack(t, 1)
	var refused atomic.Int64
	refuser := odohtest.Serve(t, s.ca, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		refused.Add(1)
		w.Header().Add("Proxy-Status", inner)
		w.Header().Add("Proxy-Status", outer)
		w.WriteHeader(http.StatusBadGateway)
	}), "refuser."+proxyName)
	s.resolve["refuser."+proxyName+":"+refuser.Port()] = refuser.Addr
	refuserURL := fmt.Sprintf("https://refuser.%s:%s/dns-query{?targethost,targetpath}", proxyName, refuser.Port())

	// The refuser alone: the error carries the whole field.
	o := s.options(false)
	o.Proxies = []string{refuserURL}
	o.ConfigSource = client.ConfigFromTarget
	o.MaxAttempts = 1
	_, err := s.client(t, o).Exchange(t.Context(), query("ps.example.", 1))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway {
		t.Fatalf("err = %v, want the refuser's 502", err)
	}
	if want := inner + ", " + outer; he.ProxyStatus != want {
		t.Fatalf("ProxyStatus %q, want %q", he.ProxyStatus, want)
	}
	ps, err := odoh.ParseProxyStatus(he.ProxyStatus)
	if err != nil || len(ps) != 2 || ps[1].Name != "odoh-proxy" || ps[1].NextHopFault() {
		t.Fatalf("parsed %+v, %v; want the proxy's own refusal last", ps, err)
	}

	// Beside an honest proxy: once the refuser has failed a query it is in
	// cooldown, so it sees no other. Had the client read only the first
	// line, it would have blamed the target and kept trying the refuser.
	o.Proxies = []string{refuserURL, s.proxyURL(0)}
	o.MaxAttempts = 2
	o.Cooldown = time.Minute
	for range 40 {
		refused.Store(0)
		c := s.client(t, o)
		for i := range 20 {
			if _, err := c.Exchange(t.Context(), query(fmt.Sprintf("q%d.example.", i), 1)); err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		}
		switch n := refused.Load(); n {
		case 0:
			continue // the honest proxy was always picked first: try a new client
		case 1:
			return
		default:
			t.Fatalf("the refuser saw %d queries, want 1: the target was blamed for the proxy's refusal", n)
		}
	}
	t.Fatal("the refuser was never tried")
}

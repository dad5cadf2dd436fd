package client_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/odoh"
)

// A proxy that answered 504 waited its whole response timeout for the
// target: the client does not ask that pair again in the same query, so
// the proxy's error reaches the caller at once rather than after retries
// that would wait as long each.
func TestGatewayTimeoutNotRetriedOnTheSamePair(t *testing.T) {
	s := newStack(t, 0)
	var posts atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.Header().Set("Proxy-Status", "odoh-proxy; error=http_response_timeout")
		http.Error(w, "timeout", http.StatusGatewayTimeout)
	})
	srv := odohtest.Serve(t, s.ca, slow, "slow."+proxyName)
	s.resolve["slow."+proxyName+":"+srv.Port()] = srv.Addr
	o := s.options(false)
	o.Proxies = []string{"https://slow." + proxyName + ":" + srv.Port() + "/dns-query{?targethost,targetpath}"}
	cfgs, err := odoh.MarshalConfigs(s.target.Config())
	if err != nil {
		t.Fatal(err)
	}
	o.ConfigSource, o.StaticConfigs = client.ConfigStatic, cfgs
	c := s.client(t, o)
	_, err = c.Exchange(t.Context(), query("slow.example.", dns.TypeA))
	var he *client.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusGatewayTimeout || he.ProxyStatus == "" {
		t.Fatalf("err = %v, want the proxy's 504", err)
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("%d posts for one query, want 1", n)
	}
}

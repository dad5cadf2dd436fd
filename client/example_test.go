package client_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/odoh"
)

func Example() {
	c, err := client.New(client.Config{
		Proxies: []string{"https://proxy.example/dns-query{?targethost,targetpath}"},
		Targets: []string{"https://odoh.example.net/dns-query"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	if a, err := c.Exchange(context.Background(), m); err == nil {
		fmt.Println(a.Answer)
	}
}

// New checks its Config without touching the network; what it refuses
// wraps one of the package's sentinels, for errors.Is.
func ExampleNew() {
	_, err := client.New(client.Config{Targets: []string{"https://odoh.example.net/dns-query"}})
	fmt.Println(errors.Is(err, client.ErrNoProxy))
	_, err = client.New(client.Config{
		Proxies: []string{"https://relay.example.net/dns-query{?targethost,targetpath}"},
		Targets: []string{"https://odoh.example.net/dns-query"},
	})
	fmt.Println(errors.Is(err, client.ErrSameOperator))
	// Output:
	// true
	// true
}

// A failed exchange: errors.As finds the proxy's answer, whose
// Proxy-Status odoh.ParseProxyStatus reads, and Classify names the cause
// for a log or a metric. Here the proxy could not reach the target.
func ExampleClassify() {
	proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Proxy-Status", "odoh-proxy; error=connection_refused")
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	roots := x509.NewCertPool()
	roots.AddCert(proxy.Certificate())
	key, err := odoh.GenerateKey(odoh.DefaultSuite()) // the target's, published
	if err != nil {
		fmt.Println(err)
		return
	}
	configs, err := odoh.MarshalConfigs(key.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := client.New(client.Config{
		Proxies:       []string{proxy.URL + "/dns-query{?targethost,targetpath}"},
		Targets:       []string{"https://odoh.example.net/dns-query"},
		ConfigSource:  client.ConfigStatic,
		StaticConfigs: configs,
		RootCAs:       roots,
		MaxAttempts:   1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, err = c.Exchange(context.Background(), new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
	if he, ok := errors.AsType[*client.HTTPError](err); ok {
		ps, _ := odoh.ParseProxyStatus(he.ProxyStatus)
		last := ps[len(ps)-1] // the proxy closest to the client
		fmt.Println(he.StatusCode, last.Error, "target's fault:", last.NextHopFault())
	}
	fmt.Println(client.Classify(err))
	// Output:
	// 502 connection_refused target's fault: true
	// http_status
}

func ExampleParseProxyTemplate() {
	p, err := client.ParseProxyTemplate("https://dnsproxy.example/dns-query{?targethost,targetpath}")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Expand("dnstarget.example", "/dns-query"))
	// Output: https://dnsproxy.example/dns-query?targethost=dnstarget.example&targetpath=%2Fdns-query
}

func ExampleParseStamp() {
	st, err := client.ParseStamp("sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.URL())
	// Output: https://odoh.cloudflare-dns.com/dns-query
}

// A stub resolver on loopback answering through ODoH; cancelling ctx (on
// SIGTERM, say) drains it.
func ExampleNewStub() {
	c, err := client.New(client.Config{
		Proxies: []string{"https://proxy.example/dns-query{?targethost,targetpath}"},
		Targets: []string{"https://odoh.example.net/dns-query"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	st, err := client.NewStub(client.StubConfig{Client: c, Addr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Serve(ctx) }()
	// ... point a resolver at st.Addr(); on SIGTERM:
	cancel()
	fmt.Println(<-done)
	// Output: <nil>
}

// A target pinned by a config's key ID, as "odoh configs" prints it:
// whatever path its configs come by, only that key is used.
func ExampleParsePin() {
	p, err := client.ParsePin("odoh.example.net=key:8a3c1f00")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %x\n", p.Host, p.KeyID)
	_, err = client.ParsePin("odoh.example.net=sha1:00")
	fmt.Println(err)
	// Output:
	// odoh.example.net 8a3c1f00
	// pin "odoh.example.net=sha1:00": kind "sha1", want cert or key
}

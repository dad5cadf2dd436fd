package client_test

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/proxy"
)

// BenchmarkStubQuery measures one query through the whole in-process
// stack: a DNS client over UDP → stub (cache off) → the real proxy
// handler → the test target, over HTTP/2 and HTTP/3, 64 queries in
// flight. Each op is one answered query; allocs/op counts every component
// in the process, so it moves with the stub's, the client's and the
// proxy's per-query garbage.
func BenchmarkStubQuery(b *testing.B) {
	for _, h3 := range []bool{false, true} {
		name := "h2"
		if h3 {
			name = "h3"
		}
		b.Run(name, func(b *testing.B) {
			ca := testca.New(b)
			tsrv := odohtest.Serve(b, ca, odohtest.NewTarget(b))
			ph, err := proxy.New(proxy.Config{
				Policy:     proxy.Policy{Allow: []string{tsrv.Addr}},
				RootCAs:    ca.Pool(),
				ClientRate: -1, // all load comes from one address
				Logger:     slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ph.Close() })
			psrv := odohtest.Serve(b, ca, ph, proxyName)
			c, err := client.New(client.Config{
				Proxies: []string{"https://" + proxyName + ":" + psrv.Port() + "/dns-query{?targethost,targetpath}"},
				Targets: []string{"https://" + tsrv.Addr + "/dns-query"},
				HTTP3:   h3,
				RootCAs: ca.Pool(),
				Resolve: map[string]string{proxyName + ":" + psrv.Port(): psrv.Addr},
				Logger:  slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			st := startStub(b, c, -1)
			addr := st.Addr()
			// Warm up: configs fetched, connections open.
			exchangeStub(b, addr, "udp", query("warm.example.", dns.TypeA))
			var n atomic.Int64
			b.SetParallelism(32) // 2 cores × 32 = 64 queries in flight
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := dns.Dial("udp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				for pb.Next() {
					m := query(fmt.Sprintf("q%d.example.", n.Add(1)%1000), dns.TypeA)
					_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
					if err := conn.WriteMsg(m); err != nil {
						b.Error(err)
						return
					}
					a, err := conn.ReadMsg()
					if err != nil {
						b.Error(err)
						return
					}
					if a.Id != m.Id || a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
						b.Errorf("answer %v", a)
						return
					}
				}
			})
		})
	}
}

// BenchmarkExchange measures one Client.Exchange, one query at a time,
// through the real proxy handler to the test target over HTTP/2 and
// HTTP/3. allocs/op counts the whole process (client, proxy, target), so
// it moves with the client's sealing, request and DNS work per query.
func BenchmarkExchange(b *testing.B) {
	for _, h3 := range []bool{false, true} {
		name := "h2"
		if h3 {
			name = "h3"
		}
		b.Run(name, func(b *testing.B) {
			s := newStack(b, 0)
			ph, err := proxy.New(proxy.Config{
				Policy:     proxy.Policy{Allow: []string{s.tsrv.Addr}},
				RootCAs:    s.ca.Pool(),
				ClientRate: -1,
				Logger:     slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ph.Close() })
			psrv := odohtest.Serve(b, s.ca, ph, proxyName)
			o := s.options(h3)
			o.Proxies = []string{"https://" + proxyName + ":" + psrv.Port() + "/dns-query{?targethost,targetpath}"}
			o.Targets = []string{"https://" + s.tsrv.Addr + "/dns-query"}
			o.Resolve = map[string]string{proxyName + ":" + psrv.Port(): psrv.Addr}
			o.Logger = slog.New(slog.DiscardHandler)
			c := s.client(b, o)
			qs := make([]*dns.Msg, 256)
			for i := range qs {
				qs[i] = query(fmt.Sprintf("q%d.example.", i), dns.TypeA)
			}
			ctx := b.Context()
			if _, err := c.Exchange(ctx, qs[0]); err != nil { // configs, connections
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a, err := c.Exchange(ctx, qs[i%len(qs)])
				if err != nil {
					b.Fatal(err)
				}
				if a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
					b.Fatalf("answer %v", a)
				}
			}
		})
	}
}

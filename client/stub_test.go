package client_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/client"
)

func startStub(t testing.TB, c *client.Client, cacheSize int) *client.Stub {
	t.Helper()
	st := &client.Stub{Client: c, Addr: "127.0.0.1:0", CacheSize: cacheSize}
	if err := st.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := st.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	time.Sleep(20 * time.Millisecond) // let ActivateAndServe start
	return st
}

func TestStubDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dig missing (Debian bind9-dnsutils)")
		}
		t.Skip("dig missing; install Debian bind9-dnsutils")
	}
	s := newStack(t, 1)
	st := startStub(t, s.client(t, s.options(false)), 0)
	host, port, _ := strings.Cut(st.LocalAddr(), ":")
	for _, mode := range []string{"+notcp", "+tcp"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, "www.example.", "A", mode, "+tries=1", "+time=3").CombinedOutput()
			if err != nil {
				t.Fatalf("dig: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "status: NOERROR") || !strings.Contains(string(out), "192.0.2.1") {
				t.Fatalf("dig output:\n%s", out)
			}
		})
	}
}

func exchangeStub(t testing.TB, addr, net string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	a, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStubCache(t *testing.T) {
	s := newStack(t, 1)
	st := startStub(t, s.client(t, s.options(false)), 100)
	q := query("CaChE.example.", dns.TypeA)
	a1 := exchangeStub(t, st.LocalAddr(), "udp", q)
	before := s.target.Queries.Load()
	q2 := query("cache.EXAMPLE.", dns.TypeA)
	a2 := exchangeStub(t, st.LocalAddr(), "tcp", q2)
	if s.target.Queries.Load() != before {
		t.Error("second query was not answered from the cache")
	}
	if a2.Id != q2.Id || a2.Question[0].Name != "cache.EXAMPLE." {
		t.Errorf("cached answer id %d question %v", a2.Id, a2.Question)
	}
	if len(a1.Answer) != 1 || len(a2.Answer) != 1 || a2.Answer[0].Header().Ttl > 300 {
		t.Errorf("answers %v %v", a1.Answer, a2.Answer)
	}
	// A different type is a different key.
	exchangeStub(t, st.LocalAddr(), "udp", query("cache.example.", dns.TypeAAAA))
	if s.target.Queries.Load() == before {
		t.Error("AAAA was answered from the A entry")
	}
}

func TestStubServfail(t *testing.T) {
	s := newStack(t, 1)
	st := startStub(t, s.client(t, s.options(false)), 100)
	s.proxies[0].Down.Store(true)
	a := exchangeStub(t, st.LocalAddr(), "udp", query("fail.example.", dns.TypeA))
	if a.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[a.Rcode])
	}
	// SERVFAIL is not cached: once the proxy is back, the answer flows.
	s.proxies[0].Down.Store(false)
	a = exchangeStub(t, st.LocalAddr(), "udp", query("fail.example.", dns.TypeA))
	if a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
		t.Fatalf("after recovery: %v", a)
	}
}

func TestStubOverload(t *testing.T) {
	s := newStack(t, 1)
	c := s.client(t, s.options(false))
	st := &client.Stub{Client: c, Addr: "127.0.0.1:0", MaxInFlight: 1, CacheSize: -1}
	if err := st.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = st.Serve() }()
	defer func() { _ = st.Shutdown(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	// Hold the only slot with slow answers.
	s.target.Delay.Store(int64(300 * time.Millisecond))
	results := make(chan int, 8)
	for i := range 8 {
		go func() {
			q := query("o"+string(rune('a'+i))+".example.", dns.TypeA)
			a, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, st.LocalAddr())
			if err != nil {
				results <- -1
				return
			}
			results <- a.Rcode
		}()
	}
	ok, fail := 0, 0
	for range 8 {
		switch <-results {
		case dns.RcodeSuccess:
			ok++
		case dns.RcodeServerFailure:
			fail++
		default:
			t.Error("unexpected result")
		}
	}
	if ok == 0 || fail == 0 || ok+fail != 8 {
		t.Errorf("ok %d servfail %d", ok, fail)
	}
}

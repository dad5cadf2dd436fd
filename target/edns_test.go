package target_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testdns"
	"github.com/odohd/odoh/target"
)

// echoUpstream is a UDP DNS server that answers every A query and, as
// resolvers do, echoes the query's ECS and COOKIE options (RFC 7871 §7.2,
// RFC 7873 §5.2, adding a server cookie) and adds an NSID of its own. It
// records the options of every query it receives.
type echoUpstream struct {
	addr string
	mu   sync.Mutex
	seen [][]dns.EDNS0 // options of each query; nil: no OPT
}

func startEchoUpstream(t *testing.T) *echoUpstream {
	t.Helper()
	u := &echoUpstream{}
	u.addr = testdns.Start(t, func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.44")
		r.Answer = append(r.Answer, rr)
		var opts []dns.EDNS0
		if opt := q.IsEdns0(); opt != nil {
			opts = append([]dns.EDNS0{}, opt.Option...)
			ropt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			ropt.SetUDPSize(4096)
			ropt.SetDo(opt.Do())
			for _, o := range opt.Option {
				switch o := o.(type) {
				case *dns.EDNS0_SUBNET:
					e := *o
					e.SourceScope = e.SourceNetmask
					ropt.Option = append(ropt.Option, &e)
				case *dns.EDNS0_COOKIE:
					ropt.Option = append(ropt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: o.Cookie[:16] + "5e4e4c00aabbccdd"})
				}
			}
			ropt.Option = append(ropt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "7570737472656d"})
			r.Extra = append(r.Extra, ropt)
		}
		u.mu.Lock()
		u.seen = append(u.seen, opts)
		u.mu.Unlock()
		_ = w.WriteMsg(r)
	}).Addr
	return u
}

func (u *echoUpstream) queries() [][]dns.EDNS0 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]dns.EDNS0(nil), u.seen...)
}

// ednsQuery builds a query for name with EDNS(0) and the given options.
func ednsQuery(name string, do bool, size uint16, opts ...dns.EDNS0) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.SetEdns0(size, do)
	q.IsEdns0().Option = opts
	return q
}

func ecs(prefix string) *dns.EDNS0_SUBNET {
	p := netip.MustParsePrefix(prefix)
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()}
}

func optionCodes(m *dns.Msg) []uint16 {
	var codes []uint16
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			codes = append(codes, o.Option())
		}
	}
	return codes
}

func chainResolve(t *testing.T, c *target.Chain, q *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Resolve(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 {
		t.Fatalf("answer %v", r)
	}
	if _, err := r.Pack(); err != nil {
		t.Fatalf("answer does not pack: %v", err)
	}
	return r
}

// TestNoOptionLeaksBetweenClients: one client's ECS and cookie, echoed by
// the upstream, never reach another client, through the cache or not; the
// upstream sees a client's ECS (a hint it chose to give) but never its
// cookie; each client gets an OPT record built from its own query.
func TestNoOptionLeaksBetweenClients(t *testing.T) {
	up := startEchoUpstream(t)
	pool, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cache := newCache(t, target.CacheConfig{Size: 100})
	c := newChain(t, target.ChainConfig{Upstream: pool, Cache: cache})
	const name = "shared.example."

	// Client A: ECS and a client cookie.
	a := chainResolve(t, c, ednsQuery(name, false, 1232, ecs("198.51.100.0/24"),
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"}))
	if got := optionCodes(a); len(got) != 1 || got[0] != dns.EDNS0SUBNET {
		t.Errorf("A's answer carries options %v, want only the echo of its own ECS", got)
	}
	if cache.Len() != 0 {
		t.Error("the answer to a query with ECS and COOKIE was cached")
	}
	seen := up.queries()
	if len(seen) != 1 {
		t.Fatalf("%d upstream queries, want 1", len(seen))
	}
	var fwdECS bool
	for _, o := range seen[0] {
		switch o.Option() {
		case dns.EDNS0COOKIE:
			t.Error("A's cookie was forwarded to the upstream")
		case dns.EDNS0SUBNET:
			fwdECS = o.(*dns.EDNS0_SUBNET).Address.String() == "198.51.100.0"
		}
	}
	if !fwdECS {
		t.Errorf("A's ECS hint not forwarded: upstream saw %v", seen[0])
	}

	// Client B: plain EDNS, misses the cache, gets neither A's options nor
	// the upstream's NSID, and the UDP size of its own query.
	b := chainResolve(t, c, ednsQuery(name, false, 1400))
	if got := optionCodes(b); len(got) != 0 {
		t.Errorf("B's answer carries options %v, want none", got)
	}
	if opt := b.IsEdns0(); opt == nil || opt.Do() || opt.UDPSize() != 1400 {
		t.Errorf("B's OPT %v, want B's UDP size", opt)
	}
	if len(up.queries()) != 2 || cache.Len() != 1 {
		t.Fatalf("%d upstream queries, %d cached; want 2 and 1", len(up.queries()), cache.Len())
	}
	if got := up.queries()[1]; len(got) != 0 {
		t.Errorf("the target added options to B's query: %v", got)
	}

	// From the cache: C without EDNS gets no OPT; D with EDNS gets its own
	// size and no option; E with ECS skips the cache.
	c1 := chainResolve(t, c, new(dns.Msg).SetQuestion(name, dns.TypeA))
	if c1.IsEdns0() != nil {
		t.Errorf("C asked without EDNS and got OPT %v", c1.IsEdns0())
	}
	d := chainResolve(t, c, ednsQuery(name, false, 512))
	if opt := d.IsEdns0(); opt == nil || opt.Do() || opt.UDPSize() != 512 || len(opt.Option) != 0 {
		t.Errorf("D's OPT %v, want no DO, size 512, no option", opt)
	}
	if n := len(up.queries()); n != 2 {
		t.Errorf("%d upstream queries, want C and D answered from the cache", n)
	}
	e := chainResolve(t, c, ednsQuery(name, false, 1232, ecs("203.0.113.0/24")))
	if n := len(up.queries()); n != 3 {
		t.Errorf("%d upstream queries, want E's ECS query to skip the cache", n)
	}
	if opts := e.IsEdns0().Option; len(opts) != 1 || opts[0].(*dns.EDNS0_SUBNET).Address.String() != "203.0.113.0" {
		t.Errorf("E's answer options %v, want the echo of E's own ECS", opts)
	}
}

// TestCacheStoresNoOPT: a cached answer's OPT record, whatever it held,
// is never handed out; each requester gets one of its own.
func TestCacheStoresNoOPT(t *testing.T) {
	up := startEchoUpstream(t)
	pool, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c := newChain(t, target.ChainConfig{Upstream: pool, Cache: newCache(t, target.CacheConfig{Size: 10})})
	chainResolve(t, c, ednsQuery("x.example.", true, 1232))
	got := chainResolve(t, c, ednsQuery("x.example.", true, 700))
	if n := len(up.queries()); n != 1 {
		t.Fatalf("%d upstream queries, want the second answered from the cache", n)
	}
	if opt := got.IsEdns0(); opt == nil || len(opt.Option) != 0 || !opt.Do() || opt.UDPSize() != 700 {
		t.Errorf("OPT %v, want a fresh one: DO, size 700, no options (the upstream sent NSID)", opt)
	}
	// Without EDNS (another key: no DO), an answer never gets an OPT.
	plain := new(dns.Msg).SetQuestion("x.example.", dns.TypeA)
	chainResolve(t, c, plain)
	got = chainResolve(t, c, plain)
	if got.IsEdns0() != nil || len(got.Extra) != 0 {
		t.Fatalf("answer to a query without EDNS: %v, want no OPT", got)
	}
	if n := len(up.queries()); n != 2 {
		t.Errorf("%d upstream queries, want 2 (DO and no DO)", n)
	}
}

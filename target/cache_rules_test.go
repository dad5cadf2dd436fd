package target_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testdns"
	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/target"
)

// The rules of the target's cache (target.Cache), each against a real
// server: Unbound where it can give the case, a DNS server on loopback
// written here where a failure or an exact answer must be forced.

// countingPool is the upstream pool with a count of the queries it is
// asked, by "name type".
type countingPool struct {
	target.Resolver
	mu sync.Mutex
	n  map[string]int
}

func (p *countingPool) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	p.mu.Lock()
	p.n[strings.ToLower(q.Question[0].Name)+" "+dns.TypeToString[q.Question[0].Qtype]]++
	p.mu.Unlock()
	return p.Resolver.Resolve(ctx, q)
}

// Down is the pool's, as a Chain asks it (see target.Chain).
func (p *countingPool) Down() bool {
	d, ok := p.Resolver.(interface{ Down() bool })
	return ok && d.Down()
}

func (p *countingPool) count(name string, qtype uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[name+" "+dns.TypeToString[qtype]]
}

func (p *countingPool) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.n {
		n += v
	}
	return n
}

// cachedChain is a Chain with a cache on a fake clock over the upstreams
// at urls.
func cachedChain(t *testing.T, cfg target.CacheConfig, o target.UpstreamsConfig, urls ...string) (*target.Chain, *countingPool, *fakeClock) {
	t.Helper()
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0))
	if o.Timeout == 0 {
		// A hang guard: a live upstream answers long before, however
		// loaded the machine. A test of a silent upstream sets its own.
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = clock.Now
	}
	o.URLs = urls
	pool, err := target.NewUpstreams(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg.Now = clock.Now
	cp := &countingPool{Resolver: pool, n: map[string]int{}}
	return newChain(t, target.ChainConfig{Upstream: cp, Cache: newCache(t, cfg)}), cp, clock
}

// ask resolves name/qtype through c with EDNS(0), DO and CD as given.
func ask(t *testing.T, c *target.Chain, name string, qtype uint16, do, cd bool) (*dns.Msg, error) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(1232, do)
	q.CheckingDisabled = cd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Resolve(ctx, q)
}

func mustAsk(t *testing.T, c *target.Chain, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := ask(t, c, name, qtype, false, false)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func hasA(r *dns.Msg, addr string) bool {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == addr {
			return true
		}
	}
	return false
}

// slackUnbound is Unbound with a name that has an A record and no AAAA,
// and a wildcard-like zone (a redirect zone answers every name below it
// with the apex's data), each with an SOA so that NODATA is cacheable.
func slackUnbound(t *testing.T) string {
	return testunbound.Start(t, testunbound.Options{
		Zones: []string{"slack.test."},
		LocalData: []string{
			"slack.test. 3600 IN SOA ns.slack.test. admin.slack.test. 1 3600 600 86400 300",
			"app.slack.test. 300 IN A 192.0.2.10",
			"Mixed.Slack.Test. 300 IN A 192.0.2.11",
			"wild.test. 3600 IN SOA ns.wild.test. admin.wild.test. 1 3600 600 86400 300",
			"wild.test. 300 IN A 192.0.2.12",
		},
		ExtraConfig: []string{`local-zone: "wild.test." redirect`},
	})
}

// TestCacheSlackSequence: the sequence that broke Slack's API name in 2021.
// AAAA for a name is answered NODATA and cached; A for the same name is then
// asked upstream and answered with its address, never from the AAAA entry;
// the same below a wildcard, for the asked name and for another one.
func TestCacheSlackSequence(t *testing.T) {
	ub := slackUnbound(t)
	c, pool, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, "udp://"+ub)
	for _, tc := range []struct{ name, other, addr string }{
		{"app.slack.test.", "", "192.0.2.10"},
		{"api.wild.test.", "edge.wild.test.", "192.0.2.12"},
	} {
		nodata := mustAsk(t, c, tc.name, dns.TypeAAAA)
		if nodata.Rcode != dns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) == 0 {
			t.Fatalf("%s AAAA: %v, want NODATA with an SOA", tc.name, nodata)
		}
		mustAsk(t, c, tc.name, dns.TypeAAAA)
		if n := pool.count(tc.name, dns.TypeAAAA); n != 1 {
			t.Errorf("%s AAAA asked upstream %d times, want the NODATA cached", tc.name, n)
		}
		for _, name := range []string{tc.name, tc.other} {
			if name == "" {
				continue
			}
			a := mustAsk(t, c, name, dns.TypeA)
			if a.Rcode != dns.RcodeSuccess || !hasA(a, tc.addr) {
				t.Errorf("%s A after a cached AAAA NODATA: %v, want %s", name, a, tc.addr)
			}
			if n := pool.count(name, dns.TypeA); n != 1 {
				t.Errorf("%s A asked upstream %d times, want once", name, n)
			}
		}
	}
}

// nsecUpstream answers like the zone of the 2021 incident: AAAA for any
// name is NODATA with an NSEC record whose type bitmap lacks A (the wrong
// proof), A is answered with an address.
func nsecUpstream(t *testing.T) *loopback {
	return startLoopback(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		name := q.Question[0].Name
		switch q.Question[0].Qtype {
		case dns.TypeA:
			rr, _ := dns.NewRR(name + " 300 IN A 192.0.2.20")
			r.Answer = []dns.RR{rr}
		default:
			soa, _ := dns.NewRR("nsec.test. 300 IN SOA ns.nsec.test. admin.nsec.test. 1 3600 600 86400 300")
			nsec, _ := dns.NewRR(name + " 300 IN NSEC \\000." + name + " RRSIG NSEC")
			r.Ns = []dns.RR{soa, nsec}
		}
		return r
	})
}

// TestCacheNoNSECSynthesis: a NODATA whose NSEC record claims the name has
// no A either (as Slack's broken zone did) answers nothing but AAAA: the A
// query goes upstream and gets the address, for the name and for its
// neighbours the NSEC covers.
func TestCacheNoNSECSynthesis(t *testing.T) {
	up := nsecUpstream(t)
	c, pool, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, up.url())
	for _, name := range []string{"api.nsec.test.", "\\000.api.nsec.test."} {
		if r, err := ask(t, c, "api.nsec.test.", dns.TypeAAAA, true, false); err != nil || len(r.Answer) != 0 {
			t.Fatalf("AAAA: %v %v", r, err)
		}
		r, err := ask(t, c, name, dns.TypeA, true, false)
		if err != nil || !hasA(r, "192.0.2.20") {
			t.Errorf("%s A after the NSEC NODATA: %v %v, want the address", name, r, err)
		}
	}
	if n := pool.count("api.nsec.test.", dns.TypeAAAA); n != 1 {
		t.Errorf("AAAA asked %d times, want once (cached)", n)
	}
}

// TestCacheKey: the name is case-insensitive; the type, the class and the
// DO and CD bits each make another entry.
func TestCacheKey(t *testing.T) {
	up := startLoopback(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		// A different answer for each DO/CD combination and class.
		last := byte(1)
		if opt := q.IsEdns0(); opt != nil && opt.Do() {
			last += 1
		}
		if q.CheckingDisabled {
			last += 2
		}
		rr := &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: q.Question[0].Qclass, Ttl: 300},
			A: net.IPv4(192, 0, 2, last)}
		if q.Question[0].Qtype == dns.TypeA {
			r.Answer = []dns.RR{rr}
		}
		return r
	})
	c, _, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, up.url())
	get := func(name string, do, cd bool) *dns.Msg {
		r, err := ask(t, c, name, dns.TypeA, do, cd)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		do, cd bool
		addr   string
	}{{false, false, "192.0.2.1"}, {true, false, "192.0.2.2"}, {false, true, "192.0.2.3"}, {true, true, "192.0.2.4"}} {
		for range 2 {
			if r := get("KeY.test.", tc.do, tc.cd); !hasA(r, tc.addr) {
				t.Errorf("DO=%v CD=%v: %v, want %s", tc.do, tc.cd, r.Answer, tc.addr)
			}
		}
	}
	if n := up.queries.Load(); n != 4 {
		t.Errorf("%d upstream queries for 4 keys asked twice, want 4", n)
	}
	get("key.TEST.", false, false)
	if n := up.queries.Load(); n != 4 {
		t.Error("another letter case was another entry")
	}
	ch := new(dns.Msg).SetQuestion("key.test.", dns.TypeA)
	ch.Question[0].Qclass = dns.ClassCHAOS
	if _, err := c.Resolve(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	mustAsk(t, c, "key.test.", dns.TypeAAAA)
	if n := up.queries.Load(); n != 6 {
		t.Errorf("%d upstream queries, want CH and AAAA asked separately (6)", n)
	}
}

// TestCacheNegativeTTL: NXDOMAIN and NODATA from Unbound live for
// min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), capped by MaxNegativeTTL; a
// negative answer without an SOA (forced here) is not cached.
func TestCacheNegativeTTL(t *testing.T) {
	ub := testunbound.Start(t, testunbound.Options{
		Zones: []string{"neg.test."},
		LocalData: []string{
			"neg.test. 3600 IN SOA ns.neg.test. admin.neg.test. 1 3600 600 86400 120",
			"host.neg.test. 300 IN A 192.0.2.30",
		},
	})
	for _, tc := range []struct {
		name    string
		qtype   uint16
		cap     time.Duration
		rcode   int
		lifeSec int
	}{
		{"nope.neg.test.", dns.TypeA, 0, dns.RcodeNameError, 120},
		{"host.neg.test.", dns.TypeTXT, 0, dns.RcodeSuccess, 120},
		{"nope.neg.test.", dns.TypeA, 50 * time.Second, dns.RcodeNameError, 50},
	} {
		c, pool, clock := cachedChain(t, target.CacheConfig{MaxNegativeTTL: tc.cap, StaleAge: -1}, target.UpstreamsConfig{}, "udp://"+ub)
		r := mustAsk(t, c, tc.name, tc.qtype)
		if r.Rcode != tc.rcode || len(r.Answer) != 0 {
			t.Fatalf("%s: %v", tc.name, r)
		}
		clock.Advance(time.Duration(tc.lifeSec)*time.Second - time.Millisecond)
		r = mustAsk(t, c, tc.name, tc.qtype)
		if pool.total() != 1 || r.Rcode != tc.rcode {
			t.Errorf("%s %s cap %v: asked upstream %d times within %ds", tc.name, dns.TypeToString[tc.qtype], tc.cap, pool.total(), tc.lifeSec)
		}
		if soa := r.Ns[0].Header(); soa.Ttl > 1 {
			t.Errorf("SOA TTL %d at the end of the negative lifetime, want it counted down", soa.Ttl)
		}
		clock.Advance(time.Millisecond)
		mustAsk(t, c, tc.name, tc.qtype)
		if pool.total() != 2 {
			t.Errorf("%s: negative answer kept past %ds", tc.name, tc.lifeSec)
		}
	}

	noSOA := startLoopback(t, func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, dns.RcodeNameError) })
	c, pool, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, noSOA.url())
	mustAsk(t, c, "x.test.", dns.TypeA)
	mustAsk(t, c, "x.test.", dns.TypeA)
	if pool.total() != 2 {
		t.Error("an NXDOMAIN without SOA was cached (RFC 2308 §5)")
	}
}

// TestCacheFailures: a SERVFAIL and a timeout are cached for 1 s (the
// default), never longer than FailureTTL, doubling while they last; the
// key's queries meanwhile get SERVFAIL (or the error) without an upstream
// query.
func TestCacheFailures(t *testing.T) {
	servfail := startLoopback(t, func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure) })
	silent := startLoopback(t, func(*dns.Msg) *dns.Msg { return nil })
	for _, tc := range []struct {
		name    string
		up      *loopback
		timeout time.Duration // the upstream's; the silent one's must pass
		ttl     time.Duration
		want    []time.Duration // cached lifetimes of consecutive failures
	}{
		{"servfail default", servfail, 0, 0, []time.Duration{time.Second, time.Second, time.Second}},
		{"servfail 5s", servfail, 0, 5 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
		{"timeout default", silent, 50 * time.Millisecond, 0, []time.Duration{time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, pool, clock := cachedChain(t, target.CacheConfig{FailureTTL: tc.ttl},
				target.UpstreamsConfig{Timeout: tc.timeout, MaxFails: -1}, tc.up.url())
			for i, life := range tc.want {
				r, err := ask(t, c, "fail.test.", dns.TypeA, false, false)
				if (err == nil) == (tc.up == silent) || err == nil && r.Rcode != dns.RcodeServerFailure {
					t.Fatalf("failure %d: %v, %v", i, r, err)
				}
				clock.Advance(life - time.Millisecond)
				ask(t, c, "fail.test.", dns.TypeA, false, false)
				if n := pool.total(); n != i+1 {
					t.Fatalf("failure %d: %d upstream queries within its %v, want %d", i, n, life, i+1)
				}
				clock.Advance(time.Millisecond)
			}
		})
	}
}

// TestCacheServeStale: the serve-stale sequence (RFC 8767). An answer is
// cached; the upstream stops; once expired, the answer is served with TTL
// 30 and the Extended DNS Error "Stale Answer"; the upstream comes back and
// the next query after the failure gets the fresh answer; with the upstream
// stopped again, a stale answer past the age limit is SERVFAIL.
func TestCacheServeStale(t *testing.T) {
	up := startLoopback(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.40")
		r.Answer = []dns.RR{rr}
		return r
	})
	// A stopped upstream usually fails at once (its closed port answers
	// ICMP port unreachable), but the kernel rate-limits those messages
	// (net.ipv4.icmp_msgs_per_sec), so on a busy machine it may be silent:
	// the upstream timeout, under the query's 10 s, ends that wait.
	c, _, clock := cachedChain(t, target.CacheConfig{StaleAge: time.Hour}, target.UpstreamsConfig{Timeout: 2 * time.Second}, up.url())
	mustAsk(t, c, "stale.test.", dns.TypeA)
	up.stop(t)
	clock.Advance(61 * time.Second)
	r, err := ask(t, c, "stale.test.", dns.TypeA, false, false)
	if err != nil || !hasA(r, "192.0.2.40") || r.Answer[0].Header().Ttl != 30 || !hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) {
		t.Fatalf("with the upstream stopped: %v %v; want the stale answer, TTL 30, EDE 3", r, err)
	}
	noEDNS := new(dns.Msg).SetQuestion("stale.test.", dns.TypeA)
	if r, err := c.Resolve(context.Background(), noEDNS); err != nil || r.IsEdns0() != nil || r.Answer[0].Header().Ttl != 30 {
		t.Errorf("stale answer to a query without EDNS: %v %v; want no OPT, TTL 30", r, err)
	}

	up.start(t, func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.41")
		r.Answer = []dns.RR{rr}
		return r
	})
	clock.Advance(time.Second) // the failure expires
	r = mustAsk(t, c, "stale.test.", dns.TypeA)
	if !hasA(r, "192.0.2.41") || hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) || r.Answer[0].Header().Ttl != 60 {
		t.Fatalf("upstream back: %v, want the fresh answer", r)
	}

	up.stop(t)
	clock.Advance(61*time.Second + time.Hour)
	if r, err := ask(t, c, "stale.test.", dns.TypeA, false, false); err == nil {
		t.Fatalf("stale answer past the age limit: %v, want SERVFAIL", r)
	}
}

// TestCacheStaleOnlyWhenEveryUpstreamFails: with one upstream stopped and
// the next one answering, an expired answer is never served stale.
func TestCacheStaleOnlyWhenEveryUpstreamFails(t *testing.T) {
	answer := func(addr string) func(*dns.Msg) *dns.Msg {
		return func(q *dns.Msg) *dns.Msg {
			r := new(dns.Msg).SetReply(q)
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + addr)
			r.Answer = []dns.RR{rr}
			return r
		}
	}
	first, second := startLoopback(t, answer("192.0.2.50")), startLoopback(t, answer("192.0.2.51"))
	// The stopped one may be silent rather than refuse (see
	// TestCacheServeStale): its timeout leaves the second time to answer
	// within the query's 10 s.
	c, _, clock := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{Timeout: 2 * time.Second}, first.url(), second.url())
	mustAsk(t, c, "one.test.", dns.TypeA)
	first.stop(t)
	clock.Advance(61 * time.Second)
	if r := mustAsk(t, c, "one.test.", dns.TypeA); !hasA(r, "192.0.2.51") || hasEDE(r, dns.ExtendedErrorCodeStaleAnswer) {
		t.Errorf("one upstream of two stopped: %v, want the second's fresh answer", r)
	}
}

// TestCacheRecoveryDespiteHealthBackoff: every upstream down long enough
// for a 30 s health backoff; once one is back, the first query after the
// failure's 1 s reaches it (the pool still tries upstreams that are down
// when none is up) and is answered. The upstream fails by refusing, at
// once: the default timeout is a hang guard for its answer.
func TestCacheRecoveryDespiteHealthBackoff(t *testing.T) {
	up := startLoopback(t, func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetRcode(q, dns.RcodeRefused) })
	c, pool, clock := cachedChain(t, target.CacheConfig{StaleAge: -1},
		target.UpstreamsConfig{MaxFails: 1, MinBackoff: 30 * time.Second, MaxBackoff: 30 * time.Second},
		up.url())
	for range 3 {
		if _, err := ask(t, c, "back.test.", dns.TypeA, false, false); err == nil {
			t.Fatal("answered while the upstream refuses")
		}
		clock.Advance(time.Second)
	}
	up.set(func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.60")
		r.Answer = []dns.RR{rr}
		return r
	})
	if r := mustAsk(t, c, "back.test.", dns.TypeA); !hasA(r, "192.0.2.60") || pool.total() != 4 {
		t.Errorf("upstream back, 3 s into its 30 s backoff: %v after %d pool queries, want the answer", r, pool.total())
	}
}

// TestCacheCoalescing: 50 identical queries while the upstream takes its
// time cost one upstream query; every client gets its own ID.
func TestCacheCoalescing(t *testing.T) {
	up := startLoopback(t, func(q *dns.Msg) *dns.Msg {
		time.Sleep(200 * time.Millisecond)
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.70")
		r.Answer = []dns.RR{rr}
		return r
	})
	c, pool, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, up.url())
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			q := new(dns.Msg).SetQuestion("same.test.", dns.TypeA)
			q.Id = uint16(i)
			r, err := c.Resolve(context.Background(), q)
			if err == nil && r.Id == uint16(i) && hasA(r, "192.0.2.70") {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 || up.queries.Load() != 1 || pool.total() != 1 {
		t.Errorf("%d answered, %d upstream queries; want 50 and 1", ok.Load(), up.queries.Load())
	}
}

// TestCacheHTTPSAndSVCB: HTTPS and SVCB records (RFC 9460) come out of the
// cache exactly as Unbound sent them: ECH config, ALPN and address hints.
func TestCacheHTTPSAndSVCB(t *testing.T) {
	const ech = "AEX+DQBBpQAgACBGmg9uM1KPxc3nt55NpT3qXtWdvlpaWwb9Z+qXJjmgcwAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA="
	ub := testunbound.Start(t, testunbound.Options{
		Zones: []string{"svc.test."},
		LocalData: []string{
			"svc.test. 300 IN HTTPS 1 . alpn=h3,h2 ipv4hint=192.0.2.80 ipv6hint=2001:db8::80 ech=" + ech,
			"_dns.svc.test. 300 IN SVCB 1 dns.svc.test. alpn=dot port=853 ipv4hint=192.0.2.81",
		},
	})
	c, pool, _ := cachedChain(t, target.CacheConfig{}, target.UpstreamsConfig{}, "udp://"+ub)
	for _, tc := range []struct {
		name  string
		qtype uint16
	}{{"svc.test.", dns.TypeHTTPS}, {"_dns.svc.test.", dns.TypeSVCB}} {
		first := mustAsk(t, c, tc.name, tc.qtype)
		cached := mustAsk(t, c, tc.name, tc.qtype)
		if len(first.Answer) != 1 || pool.count(tc.name, tc.qtype) != 1 {
			t.Fatalf("%s: %v, asked %d times", tc.name, first.Answer, pool.count(tc.name, tc.qtype))
		}
		if got, want := rdata(t, cached.Answer[0]), rdata(t, first.Answer[0]); got != want {
			t.Errorf("%s from the cache: %s, want %s", tc.name, cached.Answer[0], first.Answer[0])
		}
		if tc.qtype == dns.TypeHTTPS && !strings.Contains(first.Answer[0].String(), ech) {
			t.Errorf("HTTPS record %s lost its ECH config", first.Answer[0])
		}
	}
}

// rdata is rr's wire form past its header: what a cache must not change.
func rdata(t *testing.T, rr dns.RR) string {
	buf := make([]byte, 4096)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	h := dns.Len(&dns.ANY{Hdr: *rr.Header()})
	return string(buf[h:n])
}

// TestLocalZoneOPT: a local-zone answer carries an OPT record when the
// query had one, with its DO bit, and none otherwise (RFC 6891 §7).
func TestLocalZoneOPT(t *testing.T) {
	c := newChain(t, target.ChainConfig{Zone: mustZone(t)})
	r, err := ask(t, c, "www.zone.test.", dns.TypeA, true, false)
	if err != nil || r.IsEdns0() == nil || !r.IsEdns0().Do() {
		t.Fatalf("local answer to an EDNS query: %v %v, want an OPT with DO", r, err)
	}
	plain := new(dns.Msg).SetQuestion("www.zone.test.", dns.TypeA)
	if r, err := c.Resolve(context.Background(), plain); err != nil || r.IsEdns0() != nil {
		t.Fatalf("local answer to a plain query: %v %v, want no OPT", r, err)
	}
}

func hasEDE(r *dns.Msg, code uint16) bool {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == code {
				return true
			}
		}
	}
	return false
}

// loopback is a DNS server on 127.0.0.1 answering with a function the test
// sets (nil: no answer at all); it can be stopped (its port then refuses)
// and started again on the same port.
type loopback struct {
	addr    string
	queries atomic.Int64
	answer  atomic.Pointer[func(*dns.Msg) *dns.Msg]
	mu      sync.Mutex
	srv     *testdns.Server
}

func startLoopback(t *testing.T, answer func(*dns.Msg) *dns.Msg) *loopback {
	t.Helper()
	s := &loopback{addr: "127.0.0.1:0"}
	s.start(t, answer)
	return s
}

func (s *loopback) url() string { return "udp://" + s.addr }

func (s *loopback) set(answer func(*dns.Msg) *dns.Msg) { s.answer.Store(&answer) }

func (s *loopback) start(t *testing.T, answer func(*dns.Msg) *dns.Msg) {
	t.Helper()
	s.set(answer)
	srv := testdns.StartOn(t, s.addr, func(w dns.ResponseWriter, q *dns.Msg) {
		s.queries.Add(1)
		if r := (*s.answer.Load())(q); r != nil {
			_ = w.WriteMsg(r)
		}
	})
	s.mu.Lock()
	s.addr, s.srv = srv.Addr, srv
	s.mu.Unlock()
}

func (s *loopback) stop(*testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv.Stop()
}

// TestServfailHasOPT: the target's own SERVFAIL, when no upstream answers,
// carries an OPT record for a query that had one (RFC 6891 §7), and a
// cached failure answers the same.
func TestServfailHasOPT(t *testing.T) {
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + deadUDP(t)}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	c := zoneConfig(t, up)
	c.Resolver = newChain(t, target.ChainConfig{Zone: mustZone(t), Upstream: up, Cache: newCache(t, target.CacheConfig{})})
	s := serve(t, newHandler(t, c))
	cfg := fetchConfig(t, s.h2, s.url)
	q := new(dns.Msg).SetQuestion("example.net.", dns.TypeA)
	q.SetEdns0(1232, true)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, m, _ := odohExchange(t, s.h2, s.url, cfg, wire)
		if m.Rcode != dns.RcodeServerFailure || m.IsEdns0() == nil || !m.IsEdns0().Do() {
			t.Errorf("answer %d: %s, OPT %v; want SERVFAIL with an OPT record", i, dns.RcodeToString[m.Rcode], m.IsEdns0())
		}
	}
}

package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/client/internal/odohtest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testdns"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/target"
)

// startStub runs a stub for c until the test ends.
func startStub(t testing.TB, c *client.Client, cacheSize int) *client.Stub {
	t.Helper()
	return runStub(t, client.StubConfig{Client: c, Addr: "127.0.0.1:0", CacheSize: cacheSize})
}

func runStub(t testing.TB, cfg client.StubConfig) *client.Stub {
	t.Helper()
	st, err := client.NewStub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
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
	host, port, _ := strings.Cut(st.Addr(), ":")
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
	a1 := exchangeStub(t, st.Addr(), "udp", q)
	before := s.target.Queries.Load()
	q2 := query("cache.EXAMPLE.", dns.TypeA)
	a2 := exchangeStub(t, st.Addr(), "tcp", q2)
	if s.target.Queries.Load() != before {
		t.Error("second query was not answered from the cache")
	}
	if a2.Id != q2.Id || a2.Question[0].Name != "cache.EXAMPLE." {
		t.Errorf("cached answer id %d question %v", a2.Id, a2.Question)
	}
	if len(a1.Answer) != 1 || len(a2.Answer) != 1 || a2.Answer[0].Header().Ttl > 300 {
		t.Errorf("answers %v %v", a1.Answer, a2.Answer)
	}
	// A different type is a different key, and so is the CD bit.
	exchangeStub(t, st.Addr(), "udp", query("cache.example.", dns.TypeAAAA))
	if s.target.Queries.Load() != before+1 {
		t.Error("AAAA was answered from the A entry")
	}
	cd := query("cache.example.", dns.TypeA)
	cd.CheckingDisabled = true
	if a := exchangeStub(t, st.Addr(), "udp", cd); !a.CheckingDisabled || s.target.Queries.Load() != before+2 {
		t.Error("a CD query was answered from the entry of a query without CD")
	}
}

// TestStubServfail: when ODoH fails the stub answers SERVFAIL, with an OPT
// record for a query that had one, and caches the failure briefly: the
// queries that follow at once do not reach the proxy; once the failure
// expires (1 s) and the proxy is back, answers flow.
func TestStubServfail(t *testing.T) {
	s := newStack(t, 1)
	st := startStub(t, s.client(t, s.options(false)), 100)
	// Configs first: a failed configs fetch would be remembered for a
	// backoff, and this test is about the query.
	exchangeStub(t, st.Addr(), "udp", query("warm.example.", dns.TypeA))
	s.proxies[0].Down.Store(true)
	q := query("fail.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	a := exchangeStub(t, st.Addr(), "udp", q)
	if a.Rcode != dns.RcodeServerFailure || a.IsEdns0() == nil {
		t.Fatalf("rcode %s, OPT %v; want SERVFAIL with an OPT record", dns.RcodeToString[a.Rcode], a.IsEdns0())
	}
	sent := s.proxies[0].Requests.Load()
	if a := exchangeStub(t, st.Addr(), "udp", q); a.Rcode != dns.RcodeServerFailure {
		t.Fatalf("second query: %s", dns.RcodeToString[a.Rcode])
	}
	if n := s.proxies[0].Requests.Load(); n != sent {
		t.Fatalf("the query right after a failure reached the proxy (%d requests, want %d)", n, sent)
	}
	s.proxies[0].Down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		a = exchangeStub(t, st.Addr(), "udp", q)
		if a.Rcode == dns.RcodeSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s after the proxy came back", dns.RcodeToString[a.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(a.Answer) != 1 {
		t.Fatalf("after recovery: %v", a)
	}
}

// TestStubOverload: while its one slot (MaxInFlight 1) is busy, the stub
// answers SERVFAIL at once instead of queueing; the query in the slot is
// answered once the target lets it go.
func TestStubOverload(t *testing.T) {
	s := newStack(t, 1)
	o := s.options(false)
	o.Timeout = heldTimeout
	c := s.client(t, o)
	st := runStub(t, client.StubConfig{Client: c, Addr: "127.0.0.1:0", MaxInFlight: 1, CacheSize: -1, Timeout: heldTimeout})
	// The target holds the first query, so the only slot stays busy for
	// as long as the test needs, however slow the machine.
	gate := s.target.Hold(t, "")
	first := make(chan stubResult, 1)
	go func() { first <- askStub(st.Addr(), query("oa.example.", dns.TypeA)) }()
	waitHeld(t, gate, 1)
	forwarded := s.target.Queries.Load()
	// While it is held, every other query is answered SERVFAIL without
	// being forwarded.
	others := make(chan stubResult, 7)
	for i := range 7 {
		go func() { others <- askStub(st.Addr(), query("o"+string(rune('b'+i))+".example.", dns.TypeA)) }()
	}
	for range 7 {
		if r := recvResult(t, others); r.err != nil || r.msg.Rcode != dns.RcodeServerFailure {
			t.Errorf("query while the slot is busy: %v; want SERVFAIL", r)
		}
	}
	if n := s.target.Queries.Load(); n != forwarded {
		t.Errorf("%d queries forwarded while the slot was busy; want none", n-forwarded)
	}
	gate.Open()
	if r := recvResult(t, first); r.err != nil || r.msg.Rcode != dns.RcodeSuccess || len(r.msg.Answer) != 1 {
		t.Errorf("the held query, once released: %v; want an answer", r)
	}
}

// heldTimeout bounds the queries that tests hold at the target; it is a
// bound for a broken stub, never what an assertion waits for.
const heldTimeout = 30 * time.Second

// stubResult is one answer from the stub, or why there was none.
type stubResult struct {
	msg *dns.Msg
	err error
}

func (r stubResult) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return dns.RcodeToString[r.msg.Rcode]
}

// askStub sends q to the stub over UDP; it may run on any goroutine.
func askStub(addr string, q *dns.Msg) stubResult {
	a, _, err := (&dns.Client{Timeout: heldTimeout}).Exchange(q, addr)
	return stubResult{a, err}
}

func recvResult(t *testing.T, ch <-chan stubResult) stubResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * heldTimeout):
		t.Fatal("no answer from the stub")
		return stubResult{}
	}
}

// waitHeld waits until n queries are held at g.
func waitHeld(t *testing.T, g *odohtest.Gate, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-g.Held():
		case <-time.After(heldTimeout):
			t.Fatalf("%d of %d queries reached the target", i, n)
		}
	}
}

// TestStubInFlightPerName: with the cache off (no coalescing), at most
// MaxInFlightPerName queries for one name are forwarded at once, whatever
// their type; the others are answered SERVFAIL at once. Another name is
// not held up.
func TestStubInFlightPerName(t *testing.T) {
	s := newStack(t, 1)
	o := s.options(false)
	o.Timeout = heldTimeout
	c := s.client(t, o)
	st := runStub(t, client.StubConfig{Client: c, Addr: "127.0.0.1:0", MaxInFlightPerName: 2, CacheSize: -1, Timeout: heldTimeout})
	exchangeStub(t, st.Addr(), "udp", query("warm.example.", dns.TypeA)) // configs fetched
	before := s.target.Queries.Load()
	// The target holds what is forwarded for Busy.example. until the
	// test has seen the rest answered.
	gate := s.target.Hold(t, "busy.example.")
	results := make(chan stubResult, 10)
	for i := range 10 {
		qtype := dns.TypeA
		if i%2 == 1 {
			qtype = dns.TypeAAAA
		}
		go func() { results <- askStub(st.Addr(), query("Busy.example.", qtype)) }()
	}
	// Two are forwarded and held; the eight others must be answered
	// SERVFAIL while those two are still in flight (a third forwarded one
	// would be held too, and its answer would never come here).
	waitHeld(t, gate, 2)
	for range 8 {
		if r := recvResult(t, results); r.err != nil || r.msg.Rcode != dns.RcodeServerFailure {
			t.Errorf("query beyond the per-name limit: %v; want SERVFAIL", r)
		}
	}
	if got := s.target.Queries.Load() - before; got != 2 {
		t.Errorf("%d queries for the busy name reached the target; want 2", got)
	}
	// Another name is not held up by the busy one.
	if a := exchangeStub(t, st.Addr(), "udp", query("other.example.", dns.TypeA)); a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 {
		t.Errorf("another name while Busy.example. is at its limit: %s; want an answer", dns.RcodeToString[a.Rcode])
	}
	gate.Open()
	for range 2 {
		if r := recvResult(t, results); r.err != nil || r.msg.Rcode != dns.RcodeSuccess || len(r.msg.Answer) != 1 {
			t.Errorf("a held query, once released: %v; want an answer", r)
		}
	}
	if got := s.target.Queries.Load() - before; got != 3 {
		t.Errorf("%d queries reached the target in all; want 3 (2 for the busy name, 1 for the other)", got)
	}
}

// realStack is a client stack through the real target: client → proxy
// double → target.Handler → upstreams. Its second result counts the
// queries that reach the target.
func realStack(t testing.TB, cache *target.Cache, upstreams ...string) (*stack, *atomic.Int64) {
	t.Helper()
	pool, err := target.NewUpstreams(target.UpstreamsConfig{URLs: upstreams, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	keys, err := target.NewKeyring(target.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := target.NewChain(target.ChainConfig{Upstream: pool, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	h, err := target.New(target.Config{Keys: keys, Resolver: chain, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	queries := new(atomic.Int64)
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			queries.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	s := &stack{ca: testca.New(t), resolve: map[string]string{}}
	s.tsrv = odohtest.Serve(t, s.ca, counted, targetName)
	s.resolve[s.targetHost()] = s.tsrv.Addr
	p := odohtest.NewProxy(s.ca, s.resolve)
	srv := odohtest.Serve(t, s.ca, p, "p0."+proxyName)
	s.resolve["p0."+proxyName+":"+srv.Port()] = srv.Addr
	s.proxies, s.psrvs = []*odohtest.Proxy{p}, []*odohtest.Server{srv}
	return s, queries
}

// ecsUpstream is a DNS server on loopback that answers every A query and,
// as resolvers do, echoes the query's ECS option with a scope.
func ecsUpstream(t testing.TB) string {
	t.Helper()
	return testdns.Start(t, func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.44")
		r.Answer = append(r.Answer, rr)
		if opt := q.IsEdns0(); opt != nil {
			r.SetEdns0(1232, opt.Do())
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_SUBNET); ok {
					echo := *e
					echo.SourceScope = e.SourceNetmask
					r.IsEdns0().Option = append(r.IsEdns0().Option, &echo)
				}
			}
		}
		_ = w.WriteMsg(r)
	}).URL()
}

// TestStubNeverSharesECS: two clients of one stub ask for one name, the
// first with an ECS option: it gets the echo of its own subnet, and the
// second never sees it, whether it asks before or after.
func TestStubNeverSharesECS(t *testing.T) {
	s, _ := realStack(t, nil, ecsUpstream(t))
	st := startStub(t, s.client(t, s.options(false)), 0)
	withECS := func() *dns.Msg {
		q := query("shared.example.", dns.TypeA)
		q.SetEdns0(1232, false)
		p := netip.MustParsePrefix("198.51.100.0/24")
		q.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: p.Addr().AsSlice()}}
		return q
	}
	plain := func() *dns.Msg {
		q := query("shared.example.", dns.TypeA)
		q.SetEdns0(1232, false)
		return q
	}
	assertNoECS := func(who string, a *dns.Msg) {
		t.Helper()
		if a.Rcode != dns.RcodeSuccess || a.IsEdns0() == nil {
			t.Fatalf("%s: %v", who, a)
		}
		for _, o := range a.IsEdns0().Option {
			if o.Option() == dns.EDNS0SUBNET {
				t.Errorf("%s got another client's ECS echo %v", who, o)
			}
		}
	}
	a := exchangeStub(t, st.Addr(), "udp", withECS())
	echoed := false
	for _, o := range a.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok && e.Address.String() == "198.51.100.0" {
			echoed = true
		}
	}
	if !echoed {
		t.Errorf("the ECS client did not get its own echo: %v", a.IsEdns0())
	}
	assertNoECS("a client after it", exchangeStub(t, st.Addr(), "udp", plain()))
	assertNoECS("the same client, cached", exchangeStub(t, st.Addr(), "tcp", plain()))
	exchangeStub(t, st.Addr(), "udp", withECS())
	assertNoECS("a client after a second ECS query", exchangeStub(t, st.Addr(), "udp", plain()))
}

// shortTTLUpstream answers every A query with addr, TTL 1 s.
func shortTTLUpstream(t testing.TB, addr *atomic.Pointer[string]) string {
	t.Helper()
	return testdns.Start(t, func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 1 IN A " + *addr.Load())
		r.Answer = []dns.RR{rr}
		_ = w.WriteMsg(r)
	}).URL()
}

// TestStubServeStale: the stub's serve-stale sequence. An answer is cached;
// the proxy goes down; the expired answer is served with TTL 30 and the
// Extended DNS Error "Stale Answer" to a client with EDNS; the proxy comes
// back and, once the failure expires, the fresh answer flows; a stale
// answer past StaleAge is SERVFAIL.
func TestStubServeStale(t *testing.T) {
	addr := new(atomic.Pointer[string])
	v1 := "192.0.2.1"
	addr.Store(&v1)
	s, _ := realStack(t, nil, shortTTLUpstream(t, addr))
	st := runStub(t, client.StubConfig{Client: s.client(t, s.options(false)), Addr: "127.0.0.1:0",
		StaleAge: 3 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	q := query("stale.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	ask := func() *dns.Msg { t.Helper(); return exchangeStub(t, st.Addr(), "udp", q) }
	if a := ask(); len(a.Answer) != 1 {
		t.Fatalf("first answer %v", a)
	}
	s.proxies[0].Down.Store(true)
	time.Sleep(1100 * time.Millisecond) // the answer expires
	a := ask()
	var ede bool
	for _, o := range a.IsEdns0().Option {
		ede = ede || o.(*dns.EDNS0_EDE).InfoCode == dns.ExtendedErrorCodeStaleAnswer
	}
	if a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1 || a.Answer[0].Header().Ttl != 30 || !ede {
		t.Fatalf("with the proxy down: %v; want the stale answer, TTL 30, EDE 3", a)
	}
	v2 := "192.0.2.2"
	addr.Store(&v2)
	s.proxies[0].Down.Store(false)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a = ask()
		if len(a.Answer) == 1 && a.Answer[0].(*dns.A).A.String() == "192.0.2.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy back: still %v", a)
		}
	}
	s.proxies[0].Down.Store(true)
	time.Sleep(4100 * time.Millisecond) // expired (1 s) and past StaleAge (3 s)
	if a := ask(); a.Rcode != dns.RcodeServerFailure {
		t.Fatalf("stale answer past StaleAge: %v, want SERVFAIL", a)
	}
}

// TestStubLogsServfailReasons: at the default level the stub says why it
// answers SERVFAIL, once per reason in 10 s however many queries fail, and
// never with a name or an address.
func TestStubLogsServfailReasons(t *testing.T) {
	s := newStack(t, 1)
	logs := &testlog.Buffer{}
	st := runStub(t, client.StubConfig{Client: s.client(t, s.options(false)), Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	exchangeStub(t, st.Addr(), "udp", query("warm.example.", dns.TypeA))
	s.proxies[0].Down.Store(true)
	for i := range 20 {
		if a := exchangeStub(t, st.Addr(), "udp", query(fmt.Sprintf("secret-%d.example.", i), dns.TypeA)); a.Rcode != dns.RcodeServerFailure {
			t.Fatalf("query %d: %s", i, dns.RcodeToString[a.Rcode])
		}
	}
	out := logs.String()
	if n := strings.Count(out, `"msg":"answering SERVFAIL"`); n != 1 {
		t.Errorf("%d SERVFAIL lines for 20 failures of one reason, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, `"reason":"http_status 503"`) {
		t.Errorf("no warning naming the reason:\n%s", out)
	}
	for _, secret := range []string{"secret-", "127.0.0.1", proxyName, targetName} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q:\n%s", secret, out)
		}
	}
}

// TestStubUDPDatagrams: the stub's own UDP serving path answers many
// queries at once, each with its ID; a datagram shorter than a header or
// carrying a response gets no answer (the next query's answer is the first
// datagram back); a malformed query gets a header-only FORMERR and an
// UPDATE a NOTIMP, each with the query's ID.
func TestStubUDPDatagrams(t *testing.T) {
	s := newStack(t, 1)
	st := runStub(t, client.StubConfig{Client: s.client(t, s.options(false)), Addr: "127.0.0.1:0", CacheSize: -1})
	exchangeStub(t, st.Addr(), "udp", query("warm.example.", dns.TypeA))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			q := query(fmt.Sprintf("c%d.example.", i), dns.TypeA)
			a, _, err := (&dns.Client{Timeout: 10 * time.Second}).Exchange(q, st.Addr())
			switch {
			case err != nil:
				errs <- err
			case a.Id != q.Id || a.Rcode != dns.RcodeSuccess || len(a.Answer) != 1:
				errs <- fmt.Errorf("query %d: %v", i, a)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	conn, err := net.Dial("udp", st.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	read := func() *dns.Msg {
		t.Helper()
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		return m
	}
	good := query("good.example.", dns.TypeA)
	goodWire, _ := good.Pack()
	resp := query("response.example.", dns.TypeA)
	resp.Response = true
	respWire, _ := resp.Pack()
	for _, silent := range [][]byte{{0x12, 0x34, 0, 0, 0}, respWire} {
		if _, err := conn.Write(silent); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(goodWire); err != nil {
			t.Fatal(err)
		}
		if a := read(); a.Id != good.Id || len(a.Answer) != 1 {
			t.Fatalf("after a datagram that needs no answer, got %v", a)
		}
	}

	// One question whose name is a compression pointer to itself.
	malformed := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
	if _, err := conn.Write(malformed); err != nil {
		t.Fatal(err)
	}
	if a := read(); a.Id != 0xabcd || a.Rcode != dns.RcodeFormatError || len(a.Question)+len(a.Answer)+len(a.Ns)+len(a.Extra) != 0 {
		t.Fatalf("malformed query answered %v", a)
	}
	update := query("example.", dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	updateWire, _ := update.Pack()
	if _, err := conn.Write(updateWire); err != nil {
		t.Fatal(err)
	}
	if a := read(); a.Id != update.Id || a.Rcode != dns.RcodeNotImplemented || a.Opcode != dns.OpcodeUpdate {
		t.Fatalf("update answered %v", a)
	}
}

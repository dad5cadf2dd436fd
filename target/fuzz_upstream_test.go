package target

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/leakcheck"
	"github.com/odohd/odoh/odoh"
)

// wireUpstream is an upstream in memory: it packs each query as a UDP
// upstream would send it and answers with whatever bytes answer returns,
// unpacked as the DNS library unpacks a datagram off the wire.
type wireUpstream struct {
	mu     sync.Mutex
	answer func(query []byte) ([]byte, error)
	asked  int
}

func (w *wireUpstream) exchange(_ context.Context, _ time.Time, q *dns.Msg) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.asked++
	answer := w.answer
	w.mu.Unlock()
	b, err := answer(wire)
	if err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return nil, err
	}
	return r, nil
}

func (w *wireUpstream) close() {}

func (w *wireUpstream) set(answer func([]byte) ([]byte, error)) {
	w.mu.Lock()
	w.answer, w.asked = answer, 0
	w.mu.Unlock()
}

// fuzzClientQueries are the queries a client sends in FuzzUpstreamAnswer,
// picked by a fuzzed byte: without EDNS(0), with it (DO set), with an ECS
// option and with a COOKIE, so that every way the target rebuilds the
// answer's OPT record is reached.
func fuzzClientQueries(tb testing.TB) []*dns.Msg {
	plain := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	plain.Id = 0x1234
	edns := new(dns.Msg).SetQuestion("Www.Example.com.", dns.TypeAAAA)
	edns.Id = 0xbeef
	edns.SetEdns0(1232, true)
	ecs := new(dns.Msg).SetQuestion("mail.example.com.", dns.TypeMX)
	ecs.Id = 0x0101
	ecs.SetEdns0(4096, false)
	ecs.IsEdns0().Option = append(ecs.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET,
		Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()})
	cookie := new(dns.Msg).SetQuestion("example.com.", dns.TypeTXT)
	cookie.Id = 0xffff
	cookie.SetEdns0(512, false)
	cookie.IsEdns0().Option = append(cookie.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	qs := []*dns.Msg{plain, edns, ecs, cookie}
	for _, q := range qs {
		if _, err := q.Pack(); err != nil {
			tb.Fatal(err)
		}
	}
	return qs
}

// fuzzAnswers are seed answers to q: what real upstreams send and what a
// broken or hostile one could.
func fuzzAnswers(tb testing.TB, q *dns.Msg) [][]byte {
	name := q.Question[0].Name
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	hdr := func(t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	ok := new(dns.Msg).SetReply(q)
	ok.Answer = []dns.RR{&dns.A{Hdr: hdr(dns.TypeA, 300), A: net.IPv4(192, 0, 2, 1)},
		&dns.AAAA{Hdr: hdr(dns.TypeAAAA, 60), AAAA: net.ParseIP("2001:db8::1")}}
	ok.SetEdns0(1232, true)
	ok.IsEdns0().Option = append(ok.IsEdns0().Option,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708aabbccddeeff0011"},
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e73"},
		&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer, ExtraText: "stale"},
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, SourceScope: 24, Address: net.IPv4(198, 51, 100, 0).To4()})
	add(ok)
	nx := new(dns.Msg).SetRcode(q, dns.RcodeNameError)
	nx.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 900},
		Ns: "ns.example.com.", Mbox: "h.example.com.", Minttl: 30}}
	add(nx)
	badvers := new(dns.Msg).SetReply(q)
	badvers.SetEdns0(1232, false)
	badvers.Rcode = dns.RcodeBadVers // extended: needs an OPT
	add(badvers)
	big := new(dns.Msg).SetReply(q)
	for i := range 300 {
		big.Answer = append(big.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT, uint32(i)), Txt: []string{strings.Repeat("t", 250)}})
	}
	add(big)
	tc := new(dns.Msg).SetReply(q)
	tc.Truncated = true
	add(tc)
	other := new(dns.Msg).SetQuestion("other.example.", dns.TypeA)
	other.Response = true
	add(other)
	notResponse := q.Copy()
	notResponse.Answer = ok.Answer
	add(notResponse)
	cname := new(dns.Msg).SetReply(q)
	cname.Answer = []dns.RR{&dns.CNAME{Hdr: hdr(dns.TypeCNAME, 0), Target: name}}
	add(cname)
	out = append(out, []byte{0, 0, 0x80}, nil)
	return out
}

// FuzzUpstreamAnswer hands the target arbitrary DNS answers from its
// upstream, in memory: whatever bytes come back for the query it sent,
// through the upstream pool, the cache and the handler, over ODoH (and
// DoH). Every request must get a 200 with a valid DNS answer for the
// client: its ID, its question, a response that packs within the ODoH
// limits, with no option of the upstream's but EDE (and ECS echoed to an
// ECS query), no OPT for a query without one, and the upstream's RCODE
// when its answer is one to the question asked with NOERROR, NXDOMAIN or
// YXDOMAIN (else SERVFAIL). Asked
// again with the upstream gone, the cache answers the same or SERVFAILs.
// No input may leave a goroutine behind.
//
// patch sets the answer's ID to the one the target sent upstream (a random
// one the fuzzer cannot guess); pick chooses the client's query.
func FuzzUpstreamAnswer(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	keys, err := NewKeyring(KeyringConfig{Seed: bytes.Repeat([]byte{0x0f}, odoh.SeedSize), Period: time.Hour,
		Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	ups, err := NewUpstreams(UpstreamsConfig{URLs: []string{"udp://192.0.2.53"}, MaxFails: -1})
	if err != nil {
		f.Fatal(err)
	}
	wire := &wireUpstream{}
	ups.ups[0] = wire
	chain, err := NewChain(ChainConfig{Upstream: ups})
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Config{Keys: keys, Resolver: chain, DoH: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	key, err := keys.Current()
	if err != nil {
		f.Fatal(err)
	}
	cfg := key.Config()
	queries := fuzzClientQueries(f)
	for i, q := range queries {
		for _, a := range fuzzAnswers(f, q) {
			f.Add(uint8(i), a, true, false)
			f.Add(uint8(i), a, true, true)
		}
	}
	f.Add(uint8(0), []byte{0x12, 0x34, 0x80, 0, 0, 0}, false, false)

	var once sync.Once
	var base leakcheck.Baseline
	f.Fuzz(func(t *testing.T, pick uint8, answer []byte, patch, doh bool) {
		once.Do(func() { base = leakcheck.Take() })
		q := queries[int(pick)%len(queries)]
		if chain.cache, err = NewCache(CacheConfig{Size: 8, Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
		var sent []byte // the query as it went upstream
		wire.set(func(query []byte) ([]byte, error) {
			sent = query
			b := bytes.Clone(answer)
			if patch && len(b) >= 2 {
				copy(b, query[:2])
			}
			return b, nil
		})
		first := fuzzAsk(t, h, cfg, q, doh)
		if wire.asked != 1 || len(sent) < 2 {
			t.Fatalf("upstream asked %d times", wire.asked)
		}
		fuzzCheckUpstreamQuery(t, q, sent)
		want := fuzzExpectedRcode(q, sent, answer, patch)
		if first.Rcode != want {
			t.Fatalf("rcode %s, want %s", dns.RcodeToString[first.Rcode], dns.RcodeToString[want])
		}

		wire.set(func([]byte) ([]byte, error) { return nil, errors.New("upstream gone") })
		second := fuzzAsk(t, h, cfg, q, doh)
		if second.Rcode != dns.RcodeServerFailure {
			if wire.asked != 0 {
				t.Fatalf("answered %s after asking the gone upstream", dns.RcodeToString[second.Rcode])
			}
			if second.Rcode != first.Rcode || len(second.Answer) != len(first.Answer) || len(second.Ns) != len(first.Ns) {
				t.Fatalf("cached answer %s/%d/%d, first %s/%d/%d", dns.RcodeToString[second.Rcode], len(second.Answer),
					len(second.Ns), dns.RcodeToString[first.Rcode], len(first.Answer), len(first.Ns))
			}
		}
		base.Check(t, 4)
	})
}

// fuzzExpectedRcode is the RCODE the client is owed, worked out from the
// bytes alone: the upstream's, when they are an answer to the question sent
// (and representable to this client) with a final rcode, else SERVFAIL.
func fuzzExpectedRcode(q *dns.Msg, sent, answer []byte, patch bool) int {
	b := bytes.Clone(answer)
	if patch && len(b) >= 2 {
		copy(b, sent[:2])
	}
	r := new(dns.Msg)
	if r.Unpack(b) != nil || !r.Response || r.Opcode != dns.OpcodeQuery || len(b) < 2 || b[0] != sent[0] || b[1] != sent[1] {
		return dns.RcodeServerFailure
	}
	if len(r.Question) != 1 {
		return dns.RcodeServerFailure
	}
	a, w := r.Question[0], q.Question[0]
	if a.Qtype != w.Qtype || a.Qclass != w.Qclass || !strings.EqualFold(a.Name, w.Name) {
		return dns.RcodeServerFailure
	}
	if r.Rcode > 0xf && q.IsEdns0() == nil {
		return dns.RcodeServerFailure
	}
	// An answer whose records do not survive packing again cannot be
	// relayed.
	if again, err := r.Pack(); err != nil || new(dns.Msg).Unpack(again) != nil {
		return dns.RcodeServerFailure
	}
	// Only these answer the query; with every other (REFUSED, FORMERR,
	// …) the upstream failed it, as with SERVFAIL.
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeYXDomain:
		return r.Rcode
	}
	return dns.RcodeServerFailure
}

// fuzzCheckUpstreamQuery checks what went upstream: the client's question,
// a fresh ID, and no COOKIE.
func fuzzCheckUpstreamQuery(t *testing.T, q *dns.Msg, sent []byte) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(sent); err != nil {
		t.Fatalf("upstream query does not unpack: %v", err)
	}
	if len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Fatalf("upstream question %v, client asked %v", m.Question, q.Question)
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0COOKIE {
				t.Fatal("the client's cookie went upstream")
			}
		}
	}
}

// fuzzAsk sends q to the handler over ODoH (or DoH) and checks that the
// reply is a valid DNS answer to it; it returns the answer.
func fuzzAsk(t *testing.T, h *Handler, cfg *odoh.Config, q *dns.Msg, doh bool) *dns.Msg {
	t.Helper()
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	var qctx *odoh.QueryContext
	ctype := odoh.ContentType
	if doh {
		body, ctype = wire, odoh.DoHContentType
	} else if body, qctx, err = odoh.SealQuery(cfg, wire); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, odoh.QueryPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ctype {
		t.Fatalf("status %d, Content-Type %q: not a DNS answer", rec.Code, rec.Header().Get("Content-Type"))
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Fatalf("Content-Length %q for %d bytes", cl, rec.Body.Len())
	}
	plain := rec.Body.Bytes()
	if !doh {
		if plain, err = qctx.OpenResponse(plain); err != nil {
			t.Fatalf("opening the answer: %v", err)
		}
	}
	a := new(dns.Msg)
	if err := a.Unpack(plain); err != nil {
		t.Fatalf("the answer does not unpack: %v", err)
	}
	if a.Id != q.Id || !a.Response || a.Opcode != dns.OpcodeQuery {
		t.Fatalf("answer ID %#x response %v opcode %d, want ID %#x", a.Id, a.Response, a.Opcode, q.Id)
	}
	if len(a.Question) != 1 || !strings.EqualFold(a.Question[0].Name, q.Question[0].Name) ||
		a.Question[0].Qtype != q.Question[0].Qtype || a.Question[0].Qclass != q.Question[0].Qclass {
		t.Fatalf("answer question %v, asked %v", a.Question, q.Question)
	}
	if len(plain) > maxDNSAnswer {
		t.Fatalf("%d-byte answer, over %d", len(plain), maxDNSAnswer)
	}
	fuzzCheckOPT(t, q, a, doh)
	if doh {
		fuzzCheckCacheControl(t, rec.Header().Get("Cache-Control"), a)
	}
	return a
}

// fuzzCheckOPT checks the answer's OPT record: none for a query without
// one; else one, with the query's DO bit and no upstream option but EDE,
// ECS for a query that sent ECS, and the target's own padding.
func fuzzCheckOPT(t *testing.T, q, a *dns.Msg, doh bool) {
	t.Helper()
	var opts int
	for _, rr := range a.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
		}
	}
	qopt := q.IsEdns0()
	if qopt == nil {
		if opts != 0 {
			t.Fatalf("%d OPT records for a query without EDNS(0)", opts)
		}
		return
	}
	if opts != 1 {
		t.Fatalf("%d OPT records for a query with EDNS(0)", opts)
	}
	aopt := a.IsEdns0()
	if aopt.Do() != qopt.Do() {
		t.Fatalf("DO %v, query's %v", aopt.Do(), qopt.Do())
	}
	for _, o := range aopt.Option {
		switch o.Option() {
		case dns.EDNS0EDE:
		case dns.EDNS0SUBNET:
			if !dnscache.HasECS(q) {
				t.Fatal("an ECS option for a query without one")
			}
		case dns.EDNS0PADDING:
			if !doh {
				t.Fatal("EDNS(0) padding inside an ODoH answer, which is padded by ODoH")
			}
		default:
			t.Fatalf("option %d of the upstream's reached the client", o.Option())
		}
	}
}

// fuzzCheckCacheControl checks a DoH answer's freshness (RFC 8484 §5.1):
// never longer than its smallest TTL.
func fuzzCheckCacheControl(t *testing.T, cc string, a *dns.Msg) {
	t.Helper()
	if cc == "no-store" {
		return
	}
	s, ok := strings.CutPrefix(cc, "max-age=")
	n, err := strconv.ParseUint(s, 10, 32)
	if !ok || err != nil {
		t.Fatalf("Cache-Control %q", cc)
	}
	for _, rr := range append(append([]dns.RR{}, a.Answer...), a.Ns...) {
		if rr.Header().Rrtype != dns.TypeOPT && uint64(rr.Header().Ttl) < n && len(a.Answer) > 0 {
			t.Fatalf("max-age %d beyond the TTL %d of %v", n, rr.Header().Ttl, rr)
		}
	}
}

package target_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/target"
)

func TestZoneAnswers(t *testing.T) {
	z := mustZone(t)
	testCases := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string // presentation form of the answer records
		soa    bool     // SOA in the authority section
	}{
		{"A", "www.zone.test.", dns.TypeA, dns.RcodeSuccess, []string{"www.zone.test.\t300\tIN\tA\t192.0.2.1"}, false},
		{"case insensitive", "WwW.ZONE.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"www.zone.test.\t300\tIN\tAAAA\t2001:db8::1"}, false},
		{"NODATA", "www.zone.test.", dns.TypeMX, dns.RcodeSuccess, nil, true},
		{"NXDOMAIN", "nope.zone.test.", dns.TypeA, dns.RcodeNameError, nil, true},
		{"empty non-terminal", "b.c.zone.test.", dns.TypeA, dns.RcodeSuccess, nil, true},
		{"CNAME chased", "alias.zone.test.", dns.TypeA, dns.RcodeSuccess, []string{"alias.zone.test.\t300\tIN\tCNAME\twww.zone.test.", "www.zone.test.\t300\tIN\tA\t192.0.2.1"}, false},
		{"wildcard", "x.wild.zone.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"x.wild.zone.test.\t300\tIN\tTXT\t\"wildcard\""}, false},
		{"below an existing name: no wildcard", "x.www.zone.test.", dns.TypeTXT, dns.RcodeNameError, nil, true},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
			r, ok := z.Answer(q)
			if !ok {
				t.Fatal("not answered")
			}
			if r.Rcode != tc.rcode || !r.Authoritative || r.Id != q.Id {
				t.Errorf("rcode %s aa %v", dns.RcodeToString[r.Rcode], r.Authoritative)
			}
			var got []string
			for _, rr := range r.Answer {
				got = append(got, rr.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.answer, "\n") {
				t.Errorf("answer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.answer, "\n"))
			}
			if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != tc.soa {
				t.Errorf("authority %v", r.Ns)
			} else if hasSOA && r.Ns[0].Header().Ttl != 60 {
				t.Errorf("negative TTL %d, want min(SOA TTL, MINIMUM) = 60", r.Ns[0].Header().Ttl)
			}
		})
	}
	if _, ok := z.Answer(new(dns.Msg).SetQuestion("example.com.", dns.TypeA)); ok {
		t.Error("a name outside the zone was answered")
	}
}

func TestZoneRejects(t *testing.T) {
	for name, data := range map[string]string{
		"no SOA":        "www.x. 60 IN A 192.0.2.1\n",
		"outside":       "x. 60 IN SOA ns.x. a.x. 1 1 1 1 1\nwww.y. 60 IN A 192.0.2.1\n",
		"CNAME and A":   "x. 60 IN SOA ns.x. a.x. 1 1 1 1 1\nw.x. 60 IN CNAME x.\nw.x. 60 IN A 192.0.2.1\n",
		"syntax":        "x. 60 IN SOA (((\n",
		"$INCLUDE":      "$INCLUDE /etc/passwd\n",
		"other classes": "x. 60 CH SOA ns.x. a.x. 1 1 1 1 1\n",
		// The parser takes this; it cannot be packed into an answer.
		"unpackable": "x. 60 IN SOA ns.x. a.x. 1 1 1 1 1\nk.x. 60 IN OPENPGPKEY 0\n",
	} {
		if _, err := target.ParseZone(strings.NewReader(data), "", name); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestChainZoneBeforeUpstream(t *testing.T) {
	up := &countingResolver{}
	c := newChain(t, target.ChainConfig{Zone: mustZone(t), Upstream: up, Cache: newCache(t, target.CacheConfig{Size: 10})})
	resolve(t, c, "www.zone.test.", dns.TypeA)
	resolve(t, c, "nope.zone.test.", dns.TypeA)
	if up.n.Load() != 0 {
		t.Error("a local-zone name reached the upstream")
	}
	resolve(t, c, "www.example.", dns.TypeA)
	resolve(t, c, "www.example.", dns.TypeA)
	if n := up.n.Load(); n != 1 {
		t.Errorf("%d upstream queries for two identical ones with a cache, want 1", n)
	}
}

// countingResolver answers every A query with 192.0.2.200, TTL 60.
type countingResolver struct{ n atomicInt }

func (c *countingResolver) Resolve(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	c.n.Add(1)
	r := new(dns.Msg).SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.200")
	r.Answer = append(r.Answer, rr)
	return r, nil
}

func newCache(t testing.TB, c target.CacheConfig) *target.Cache {
	t.Helper()
	cache, err := target.NewCache(c)
	if err != nil {
		t.Fatal(err)
	}
	return cache
}

// TestCache: TTLs count down, the query's ID and letter case come back,
// an answer expires with its TTL, and the least recently used entry goes
// first.
func TestCache(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(time.Unix(1000, 0))
	up := &countingResolver{}
	cache := newCache(t, target.CacheConfig{Size: 2, StaleAge: -1, Now: clock.Now})
	c := newChain(t, target.ChainConfig{Upstream: up, Cache: cache})
	ask := func(name string, id uint16) *dns.Msg {
		t.Helper()
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		q.Id = id
		r, err := c.Resolve(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ask("a.example.", 1)
	clock.Advance(20 * time.Second)
	r := ask("A.example.", 99)
	if r.Id != 99 || r.Question[0].Name != "A.example." || r.Answer[0].Header().Ttl != 40 || up.n.Load() != 1 {
		t.Fatalf("cached answer %v after %d upstream queries, want TTL 40, ID 99 and the query's name", r, up.n.Load())
	}
	clock.Advance(40 * time.Second)
	if ask("a.example.", 2); up.n.Load() != 2 {
		t.Error("answer served past its TTL")
	}
	// Bounded: the least recently used goes.
	for _, n := range []string{"1.example.", "2.example.", "3.example."} {
		ask(n, 3)
	}
	before := up.n.Load()
	ask("3.example.", 4)
	if cache.Len() != 2 || up.n.Load() != before {
		t.Errorf("cache of 2 holds %d answers; the newest was not kept", cache.Len())
	}
	ask("1.example.", 5)
	if up.n.Load() != before+1 {
		t.Error("the least recently used answer was kept")
	}
}

func TestLoadZoneFile(t *testing.T) {
	p := t.TempDir() + "/z"
	writeFile(t, p, testZone)
	z, err := target.LoadZone(p)
	if err != nil {
		t.Fatal(err)
	}
	if z.Len() != 8 {
		t.Errorf("%d records, want 8", z.Len())
	}
	if _, err := target.LoadZone(p + ".missing"); err == nil {
		t.Error("missing file accepted")
	}
}

// TestZoneNamesFoldASCIIOnly: an owner name with bytes that are not UTF-8
// keeps them (folding Unicode would turn each into a 3-byte U+FFFD, making
// labels too long to pack), and only ASCII letters fold.
func TestZoneNamesFoldASCIIOnly(t *testing.T) {
	owner := "\xc9T\xe9." // bytes, not UTF-8
	data := "x. 60 IN SOA ns.x. a.x. 1 1 1 1 1\n" + strings.Repeat("\x8d", 40) + ".x. 60 IN TXT \"a\"\n" +
		owner + "x. 60 IN TXT \"b\"\n"
	z, err := target.ParseZone(strings.NewReader(data), "", "bytes")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, txt string }{
		{strings.Repeat("\x8d", 40) + ".x.", "a"},
		{"\xc9t\xe9.x.", "b"},
		{"\xc9T\xe9.X.", "b"},
	} {
		q := new(dns.Msg).SetQuestion(tc.name, dns.TypeANY)
		r, ok := z.Answer(q)
		if !ok || len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != tc.txt {
			t.Errorf("%q: answer %v, want TXT %q", tc.name, r, tc.txt)
			continue
		}
		if _, err := r.Pack(); err != nil {
			t.Errorf("%q: answer does not pack: %v", tc.name, err)
		}
	}
	// "\xe9" is not "\xc9" (Latin-1 é and É): no Unicode folding.
	q := new(dns.Msg).SetQuestion("\xe9t\xe9.x.", dns.TypeTXT)
	if r, ok := z.Answer(q); !ok || r.Rcode != dns.RcodeNameError {
		t.Errorf("non-ASCII bytes folded: %v", r)
	}
}

package target_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

func newKeyring(t testing.TB, seed []byte, now func() time.Time) *target.Keyring {
	t.Helper()
	k, err := target.NewKeyring(target.KeyringConfig{Seed: seed, Period: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newHandler returns target.New(c), failing the test on error.
func newHandler(t testing.TB, c target.Config) *target.Handler {
	t.Helper()
	h, err := target.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// zoneConfig configures a handler with DoH, answering from the test zone
// and then upstream, with random keys.
func zoneConfig(t testing.TB, upstream target.Resolver) target.Config {
	t.Helper()
	chain := newChain(t, target.ChainConfig{Zone: mustZone(t), Upstream: upstream})
	return target.Config{Keys: newKeyring(t, nil, nil), Resolver: chain, DoH: true}
}

func zoneHandler(t testing.TB, upstream target.Resolver) *target.Handler {
	t.Helper()
	return newHandler(t, zoneConfig(t, upstream))
}

// checkODoHHeaders checks what every ODoH response must carry.
func checkODoHHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != odoh.ContentType {
		t.Errorf("Content-Type %q, want %q", ct, odoh.ContentType)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
}

func TestODoHLocalZone(t *testing.T) {
	// The upstream is dead: a local-zone answer must not need it.
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + deadUDP(t)}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, zoneHandler(t, up))
	for name, c := range s.clients() {
		t.Run(name, func(t *testing.T) {
			cfg := fetchConfig(t, c, s.url)
			resp, m, body := odohExchange(t, c, s.url, cfg, query(t, "WWW.zone.test.", dns.TypeA, 0xbeef))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if want := map[string]int{"h2": 2, "h3": 3}[name]; resp.ProtoMajor != want {
				t.Errorf("served over HTTP/%d, want %d", resp.ProtoMajor, want)
			}
			checkODoHHeaders(t, resp)
			if m.Id != 0xbeef || !m.Response || !m.Authoritative || m.Rcode != dns.RcodeSuccess {
				t.Errorf("answer header %+v", m.MsgHdr)
			}
			if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
				t.Errorf("answer %v", m.Answer)
			}
			// Padding: R = type ‖ LP16(nonce16) ‖ LP16(ct); ct = R_plain + 16-byte tag.
			if plain := len(body) - 1 - 2 - 16 - 2 - 16; plain%odoh.ResponseBlockSize != 0 {
				t.Errorf("response plaintext %d bytes, not a multiple of %d", plain, odoh.ResponseBlockSize)
			}
			if name == "h2" && !strings.HasPrefix(resp.Header.Get("Alt-Svc"), `h3=":`) {
				t.Errorf("Alt-Svc %q does not advertise h3", resp.Header.Get("Alt-Svc"))
			}
			_, m, _ = odohExchange(t, c, s.url, cfg, query(t, "nope.zone.test.", dns.TypeA, 7))
			if m.Rcode != dns.RcodeNameError || m.Id != 7 || len(m.Ns) != 1 {
				t.Errorf("NXDOMAIN answer %v", m)
			}
		})
	}
}

func TestODoHUnbound(t *testing.T) {
	addr := testunbound.Start(t, testunbound.Options{
		Zones:     []string{"ub.test."},
		LocalData: []string{"host.ub.test. 300 IN A 192.0.2.77"},
	})
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	s := serve(t, zoneHandler(t, up))
	for name, c := range s.clients() {
		t.Run(name, func(t *testing.T) {
			cfg := fetchConfig(t, c, s.url)
			resp, m, _ := odohExchange(t, c, s.url, cfg, query(t, "host.ub.test.", dns.TypeA, 4242))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			checkODoHHeaders(t, resp)
			if m.Id != 4242 || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.77" {
				t.Errorf("answer %v", m)
			}
			_, m, _ = odohExchange(t, c, s.url, cfg, query(t, "missing.ub.test.", dns.TypeA, 1))
			if m.Rcode != dns.RcodeNameError {
				t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
			}
		})
	}
}

func TestUpstreamDownIsServFail(t *testing.T) {
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + deadUDP(t), "tcp://" + deadUDP(t)}, Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The query timeout is far beyond the client's: the SERVFAIL can only
	// come from both upstreams failing.
	hc := zoneConfig(t, up)
	hc.QueryTimeout = time.Hour
	s := serve(t, newHandler(t, hc))
	for name, c := range s.clients() {
		t.Run(name, func(t *testing.T) {
			cfg := fetchConfig(t, c, s.url)
			resp, m, _ := odohExchange(t, c, s.url, cfg, query(t, "example.net.", dns.TypeA, 0x1234))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			checkODoHHeaders(t, resp)
			if m.Rcode != dns.RcodeServerFailure || m.Id != 0x1234 {
				t.Errorf("answer rcode %s id %#x, want SERVFAIL %#x", dns.RcodeToString[m.Rcode], m.Id, 0x1234)
			}
		})
	}
}

// A SERVFAIL to a query with EDNS(0) carries an OPT record with the
// query's DO bit (RFC 6891 §7), over ODoH and DoH; one to a query without
// EDNS(0) carries none. (Found by FuzzUpstreamAnswer: SERVFAILs had no OPT
// over ODoH, and one without DO over DoH.)
func TestServFailMirrorsEDNS(t *testing.T) {
	s := serve(t, zoneHandler(t, nil)) // with DoH
	cfg := fetchConfig(t, s.h2, s.url)
	for _, edns := range []bool{false, true} {
		m := new(dns.Msg).SetQuestion("example.net.", dns.TypeA)
		m.Id = 0x2222
		if edns {
			m.SetEdns0(1232, true)
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		_, viaODoH, _ := odohExchange(t, s.h2, s.url, cfg, wire)
		resp, body := post(t, s.h2, s.url+odoh.QueryPath, odoh.DoHContentType, wire)
		viaDoH := new(dns.Msg)
		if resp.StatusCode != http.StatusOK || viaDoH.Unpack(body) != nil {
			t.Fatalf("DoH: status %d", resp.StatusCode)
		}
		for proto, a := range map[string]*dns.Msg{"ODoH": viaODoH, "DoH": viaDoH} {
			if a.Rcode != dns.RcodeServerFailure {
				t.Fatalf("%s: rcode %s, want SERVFAIL", proto, dns.RcodeToString[a.Rcode])
			}
			opt := a.IsEdns0()
			if edns != (opt != nil) || opt != nil && !opt.Do() {
				t.Errorf("%s: EDNS query %v, answer OPT %v", proto, edns, opt)
			}
		}
	}
}

func TestQueryTimeoutIsServFail(t *testing.T) {
	// The upstream never answers and its own timeout is far beyond the
	// client's: the SERVFAIL can only come from the query timeout.
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + deadUDP(t)}, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	hc := zoneConfig(t, up)
	hc.QueryTimeout = 200 * time.Millisecond
	s := serve(t, newHandler(t, hc))
	cfg := fetchConfig(t, s.h2, s.url)
	resp, m, _ := odohExchange(t, s.h2, s.url, cfg, query(t, "example.net.", dns.TypeA, 9))
	if resp.StatusCode != http.StatusOK || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("status %d rcode %v, want 200 SERVFAIL", resp.StatusCode, m)
	}
}

// TestStatuses walks the target rows of RFC 9230 part 1 E and F.
func TestStatuses(t *testing.T) {
	c := zoneConfig(t, nil)
	c.DoH = false
	c.MaxBodySize = 1024
	s := serve(t, newHandler(t, c))
	cfg := fetchConfig(t, s.h2, s.url)
	good, _, err := odoh.SealQuery(cfg, query(t, "www.zone.test.", dns.TypeA, 1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := odoh.ParseMessage(good)
	if err != nil {
		t.Fatal(err)
	}
	withType := func(typ odoh.MessageType) []byte {
		c := m
		c.Type = typ
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	unknownKey := func() []byte {
		c := m
		c.KeyID = bytes.Repeat([]byte{0xaa}, len(m.KeyID))
		b, _ := c.MarshalBinary()
		return b
	}()
	garbled := bytes.Clone(good)
	garbled[len(garbled)-1] ^= 1
	unparsable, _, err := odoh.SealQuery(cfg, []byte{1, 2, 3}) // not a DNS message
	if err != nil {
		t.Fatal(err)
	}
	testCases := []struct {
		name   string
		method string
		ct     string
		body   []byte
		status int
	}{
		{"ok", http.MethodPost, odoh.ContentType, good, http.StatusOK},
		{"content type case and parameters", http.MethodPost, "Application/Oblivious-DNS-Message; x=1", good, http.StatusOK},
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, odoh.ContentType, good, http.StatusMethodNotAllowed},
		{"wrong content type", http.MethodPost, "application/dns-message", good, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", good, http.StatusUnsupportedMediaType},
		{"body over limit", http.MethodPost, odoh.ContentType, make([]byte, 1025), http.StatusRequestEntityTooLarge},
		{"empty body", http.MethodPost, odoh.ContentType, nil, http.StatusBadRequest},
		{"malformed framing", http.MethodPost, odoh.ContentType, good[:len(good)-3], http.StatusBadRequest},
		{"trailing bytes", http.MethodPost, odoh.ContentType, append(bytes.Clone(good), 0), http.StatusBadRequest},
		{"response type", http.MethodPost, odoh.ContentType, withType(odoh.MessageTypeResponse), http.StatusBadRequest},
		{"unknown key id", http.MethodPost, odoh.ContentType, unknownKey, http.StatusUnauthorized},
		{"decryption failure", http.MethodPost, odoh.ContentType, garbled, http.StatusBadRequest},
		{"DNS message unparsable", http.MethodPost, odoh.ContentType, unparsable, http.StatusBadRequest},
	}
	for _, tc := range testCases {
		for name, c := range s.clients() {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				req, err := http.NewRequest(tc.method, s.url+odoh.QueryPath, bytes.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				if tc.ct != "" {
					req.Header.Set("Content-Type", tc.ct)
				}
				resp, _ := do(t, c, req)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				checkODoHHeaders(t, resp)
				if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "POST" {
					t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
				}
			})
		}
	}
	t.Run("configs POST", func(t *testing.T) {
		resp, _ := post(t, s.h2, s.url+odoh.ConfigsPath, "", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", resp.StatusCode)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		resp, _ := post(t, s.h2, s.url+"/other", odoh.ContentType, good)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
}

func TestNotAQueryIsFormErr(t *testing.T) {
	s := serve(t, zoneHandler(t, nil))
	cfg := fetchConfig(t, s.h2, s.url)
	m := new(dns.Msg).SetQuestion("www.zone.test.", dns.TypeA)
	m.Response, m.Id = true, 77
	wire, _ := m.Pack()
	resp, a, _ := odohExchange(t, s.h2, s.url, cfg, wire)
	if resp.StatusCode != http.StatusOK || a.Rcode != dns.RcodeFormatError || a.Id != 77 {
		t.Errorf("status %d answer %v, want 200 FORMERR id 77", resp.StatusCode, a)
	}
}

func TestDoH(t *testing.T) {
	s := serve(t, zoneHandler(t, nil))
	wire := query(t, "www.zone.test.", dns.TypeAAAA, 0)
	for name, c := range s.clients() {
		t.Run(name+"/POST", func(t *testing.T) {
			resp, body := post(t, c, s.url+odoh.QueryPath, "application/dns-message", wire)
			checkDoH(t, resp, body, "2001:db8::1")
		})
		t.Run(name+"/GET", func(t *testing.T) {
			url := s.url + odoh.QueryPath + "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
			resp, body := do(t, c, mustRequest(t, http.MethodGet, url))
			checkDoH(t, resp, body, "2001:db8::1")
		})
	}
	t.Run("GET bad base64", func(t *testing.T) {
		resp, _ := do(t, s.h2, mustRequest(t, http.MethodGet, s.url+odoh.QueryPath+"?dns=!!"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("DELETE", func(t *testing.T) {
		resp, _ := do(t, s.h2, mustRequest(t, http.MethodDelete, s.url+odoh.QueryPath))
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
			t.Errorf("status %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func checkDoH(t *testing.T, resp *http.Response, body []byte, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/dns-message" {
		t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("Cache-Control %q, want max-age=300", cc)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != want {
		t.Errorf("answer %v", m.Answer)
	}
}

func TestRotationOverHTTP(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0).Truncate(time.Hour).Add(10 * time.Minute))
	seed := bytes.Repeat([]byte{7}, odoh.SeedSize)
	c := zoneConfig(t, nil)
	c.Keys = newKeyring(t, seed, clock.Now)
	s := serve(t, newHandler(t, c))
	wire := query(t, "www.zone.test.", dns.TypeA, 5)

	maxAge := func() time.Duration {
		resp, _ := do(t, s.h2, mustRequest(t, http.MethodGet, s.url+odoh.ConfigsPath))
		v, ok := strings.CutPrefix(resp.Header.Get("Cache-Control"), "max-age=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
		}
		return time.Duration(n) * time.Second
	}
	cfg0 := fetchConfig(t, s.h2, s.url)
	if got := maxAge(); got != 50*time.Minute {
		t.Errorf("max-age %v at 10 minutes into the epoch, want 50m", got)
	}
	// A client that caches for max-age and then uses the key must be
	// served: check acceptance right at the end of max-age.
	clock.Advance(50*time.Minute - time.Second)
	if resp, _, _ := odohExchange(t, s.h2, s.url, cfg0, wire); resp.StatusCode != http.StatusOK {
		t.Fatalf("current key: status %d", resp.StatusCode)
	}
	// Next epoch: a new config, the previous one still accepted.
	clock.Advance(2 * time.Second)
	cfg1 := fetchConfig(t, s.h2, s.url)
	if cfg1.Equal(cfg0) {
		t.Fatal("config did not rotate")
	}
	if got := maxAge(); got > time.Hour || got < 59*time.Minute {
		t.Errorf("max-age %v at the start of an epoch", got)
	}
	for _, cfg := range []*odoh.Config{cfg0, cfg1} {
		if resp, m, _ := odohExchange(t, s.h2, s.url, cfg, wire); resp.StatusCode != http.StatusOK || m.Id != 5 {
			t.Fatalf("%v: status %d", cfg, resp.StatusCode)
		}
	}
	// Two epochs on: the first key is refused with 401, the second accepted.
	clock.Advance(time.Hour)
	if resp, _, _ := odohExchange(t, s.h2, s.url, cfg0, wire); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("key two epochs old: status %d, want 401", resp.StatusCode)
	}
	if resp, _, _ := odohExchange(t, s.h3, s.url, cfg1, wire); resp.StatusCode != http.StatusOK {
		t.Errorf("previous key: status %d, want 200", resp.StatusCode)
	}
}

func TestSharedSeedReplicas(t *testing.T) {
	seed := bytes.Repeat([]byte{0x42}, odoh.SeedSize)
	a, b := zoneConfig(t, nil), zoneConfig(t, nil)
	a.Keys, b.Keys = newKeyring(t, seed, nil), newKeyring(t, seed, nil)
	sa, sb := serve(t, newHandler(t, a)), serve(t, newHandler(t, b))
	cfgA, cfgB := fetchConfig(t, sa.h2, sa.url), fetchConfig(t, sb.h2, sb.url)
	if !cfgA.Equal(cfgB) {
		t.Fatalf("replicas publish different configs: %v, %v", cfgA, cfgB)
	}
	wire := query(t, "www.zone.test.", dns.TypeA, 11)
	for _, tc := range []struct {
		cfg *odoh.Config
		s   *testServer
	}{{cfgA, sb}, {cfgB, sa}} {
		if resp, m, _ := odohExchange(t, tc.s.h3, tc.s.url, tc.cfg, wire); resp.StatusCode != http.StatusOK || m.Id != 11 {
			t.Errorf("cross-replica query: status %d", resp.StatusCode)
		}
	}
	// A target with another seed refuses them.
	c := zoneConfig(t, nil)
	c.Keys = newKeyring(t, bytes.Repeat([]byte{0x43}, odoh.SeedSize), nil)
	sc := serve(t, newHandler(t, c))
	if resp, _, _ := odohExchange(t, sc.h2, sc.url, cfgA, wire); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("other seed: status %d, want 401", resp.StatusCode)
	}
}

// TestDoHPadding: DoH answers to queries with EDNS(0) are padded with the
// Padding option to a multiple of 468 bytes (RFC 8467 §4.1), whether the
// answer came with an OPT record (Unbound's) or not (the local zone's);
// answers to queries without EDNS(0) are not touched, and a negative
// PaddingBlock turns padding off.
func TestDoHPadding(t *testing.T) {
	addr := testunbound.Start(t, testunbound.Options{
		Zones:      []string{"ub.test."},
		LocalData:  []string{"host.ub.test. 300 IN A 192.0.2.77"},
		LargeNames: []string{"big.ub.test."},
	})
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	h := zoneHandler(t, up)
	s := serve(t, h)
	unpadded := zoneConfig(t, up)
	unpadded.PaddingBlock = -1
	su := serve(t, newHandler(t, unpadded))

	ask := func(t *testing.T, s *testServer, name string, qtype uint16, edns bool) (*dns.Msg, int) {
		t.Helper()
		q := new(dns.Msg).SetQuestion(name, qtype)
		if edns {
			q.SetEdns0(1232, false)
		}
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		resp, body := post(t, s.h2, s.url+odoh.QueryPath, "application/dns-message", wire)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) == 0 {
			t.Fatalf("%s: no answer: %v", name, m)
		}
		return m, len(body)
	}
	padding := func(m *dns.Msg) *dns.EDNS0_PADDING {
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if p, ok := o.(*dns.EDNS0_PADDING); ok {
					return p
				}
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name, qname string
		qtype       uint16
	}{
		{"local zone", "www.zone.test.", dns.TypeANY},
		{"upstream", "host.ub.test.", dns.TypeA},
		{"upstream, three blocks", "big.ub.test.", dns.TypeTXT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, n := ask(t, s, tc.qname, tc.qtype, true)
			if n%odoh.ResponseBlockSize != 0 || padding(m) == nil {
				t.Errorf("EDNS query: %d-byte answer, padding %v; want a multiple of %d", n, padding(m), odoh.ResponseBlockSize)
			}
			if opts := m.IsEdns0().Option; len(opts) != 1 {
				t.Errorf("OPT options %v, want only one padding", opts)
			}
			m, n = ask(t, s, tc.qname, tc.qtype, false)
			if m.IsEdns0() != nil || n%odoh.ResponseBlockSize == 0 {
				t.Errorf("query without EDNS: %d-byte answer with OPT %v, want no padding", n, m.IsEdns0())
			}
			m, n = ask(t, su, tc.qname, tc.qtype, true)
			if padding(m) != nil || n%odoh.ResponseBlockSize == 0 {
				t.Errorf("PaddingBlock -1: %d-byte answer, padding %v", n, padding(m))
			}
		})
	}
}

// TestODoHPaddingBlock: a custom PaddingBlock pads the plaintext to a
// multiple of the block, and an answer whose next multiple would exceed the
// 16-bit limits is padded up to the limit, not left bare: large answers of
// different sizes must not be told apart by their length.
func TestODoHPaddingBlock(t *testing.T) {
	const block = 4096
	var zone strings.Builder
	zone.WriteString("$ORIGIN pad.test.\n@ 60 IN SOA ns admin 1 3600 600 86400 60\nsmall 60 IN A 192.0.2.1\n")
	// Both answers pack to between 15 and 16 blocks (61,440 and 65,000
	// bytes); 16 blocks would exceed the 65,519-byte plaintext limit.
	sizes := map[string]int{"big1": 230, "big2": 240}
	for name, n := range sizes {
		for i := range n {
			fmt.Fprintf(&zone, "%s 60 IN TXT \"%03d%s\"\n", name, i, strings.Repeat("x", 252))
		}
	}
	z, err := target.ParseZone(strings.NewReader(zone.String()), "", "pad")
	if err != nil {
		t.Fatal(err)
	}
	chain := newChain(t, target.ChainConfig{Zone: z})
	s := serve(t, newHandler(t, target.Config{Keys: newKeyring(t, nil, nil), Resolver: chain, PaddingBlock: block}))
	cfg := fetchConfig(t, s.h2, s.url)
	// R = type ‖ LP16(nonce16) ‖ LP16(ct); ct = R_plain + 16-byte tag.
	plainLen := func(body []byte) int { return len(body) - 1 - 2 - 16 - 2 - 16 }

	_, m, body := odohExchange(t, s.h2, s.url, cfg, query(t, "small.pad.test.", dns.TypeA, 1))
	if m == nil || len(m.Answer) != 1 || plainLen(body) != block {
		t.Errorf("small answer: %d-byte plaintext, want one %d-byte block", plainLen(body), block)
	}
	for name, n := range sizes {
		_, m, body := odohExchange(t, s.h2, s.url, cfg, query(t, name+".pad.test.", dns.TypeTXT, 2))
		if m == nil || len(m.Answer) != n || m.Truncated {
			t.Fatalf("%s: answer with %d records, want %d", name, len(m.Answer), n)
		}
		if got, want := plainLen(body), 65535-16; got != want {
			t.Errorf("%s: %d-byte plaintext, want padding up to the %d-byte limit", name, got, want)
		}
	}
}

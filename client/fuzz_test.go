package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/odoh"
)

// FuzzParseStamp: ParseStamp never panics; what it accepts is an ODoH
// stamp with a host and an absolute path, String re-parses to an equal
// stamp, and a canonically encoded input comes back byte for byte.
func FuzzParseStamp(f *testing.F) {
	for _, s := range []string{
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk",
		"sdns://hQcAAAAAAAAAAAAab2RvaC1yZWxheS5lZGdlY29tcHV0ZS5hcHABLw",
		"sdns://AgcAAAAAAAAAAAAQZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk",
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29t",
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnkA",
		"sdns://BQcAAAA", "sdns://!!!", "sdns://", "",
		Stamp{Proto: StampODoHRelay, Props: StampNoLogs | StampNoFilter, Addr: "192.0.2.7:8443",
			Hashes: [][]byte{bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xbb}, 32)},
			Host:   "relay.example:8443", Path: "/proxy", Bootstrap: []string{"9.9.9.9", "1.1.1.1"}}.String(),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStamp(s)
		if err != nil {
			return
		}
		if st.Proto != StampODoHTarget && st.Proto != StampODoHRelay || st.Host == "" || !strings.HasPrefix(st.Path, "/") {
			t.Fatalf("%q parsed as %+v", s, st)
		}
		if st.Proto == StampODoHTarget && (st.Addr != "" || st.Hashes != nil || st.Bootstrap != nil) {
			t.Fatalf("target stamp %q with relay fields %+v", s, st)
		}
		out := st.String()
		again, err := ParseStamp(out)
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, st, out, again, err)
		}
		// Canonical: the payload is the base64 the encoder would write.
		payload, _ := base64.RawURLEncoding.DecodeString(s[len(stampPrefix):])
		if s[len(stampPrefix):] == base64.RawURLEncoding.EncodeToString(payload) && out != s {
			t.Fatalf("canonical %q re-encodes as %q", s, out)
		}
	})
}

// FuzzStampString: a stamp whose fields fit the format (LP fields under
// 256 bytes, VLP elements under 128) encodes to a string that parses back
// to it; one whose fields do not fit is refused by Encode.
func FuzzStampString(f *testing.F) {
	f.Add(true, uint64(7), "", "odoh.cloudflare-dns.com", "/dns-query", []byte{}, "")
	f.Add(false, uint64(6), "192.0.2.7:8443", "relay.example:8443", "/proxy", bytes.Repeat([]byte{0xaa}, 32), "9.9.9.9")
	f.Add(false, uint64(0), "", "r.example", "/", []byte{}, "")
	f.Add(true, uint64(1), "", "odoh.example", "/dns-query", bytes.Repeat([]byte{0xbb}, 32), "")
	f.Fuzz(func(t *testing.T, target bool, props uint64, addr, host, path string, hash []byte, bootstrap string) {
		st := Stamp{Proto: StampODoHRelay, Props: props, Addr: addr, Host: host, Path: path}
		if len(hash) > 0 {
			st.Hashes = [][]byte{hash, hash}
		}
		if target {
			st = Stamp{Proto: StampODoHTarget, Props: props, Host: host, Path: path, Hashes: st.Hashes}
		} else {
			if bootstrap != "" {
				st.Bootstrap = []string{bootstrap}
			}
		}
		enc, err := st.Encode()
		if host == "" || !strings.HasPrefix(path, "/") || len(host) > 255 || len(path) > 255 ||
			len(hash) > 127 || !target && (len(addr) > 255 || len(bootstrap) > 127) {
			// Outside the format: refused, never a stamp that decodes
			// to something else.
			if err == nil || st.String() != "" {
				t.Fatalf("%+v encoded to %q", st, enc)
			}
			return
		}
		if err != nil || st.String() != enc {
			t.Fatalf("%+v: %v", st, err)
		}
		got, err := ParseStamp(enc)
		if err != nil || !reflect.DeepEqual(got, st) {
			t.Fatalf("%+v → %q → %+v, %v", st, enc, got, err)
		}
	})
}

// FuzzProxyTemplate: ParseProxyTemplate never panics; for an accepted
// template and a target as New reads it, the expansion is an https URL
// that net/url parses, on the template's host, with no userinfo or
// fragment; targethost and targetpath each appear exactly once and, in the
// query forms, decode to the target's host and path.
func FuzzProxyTemplate(f *testing.F) {
	for _, tmpl := range []string{
		"https://dnsproxy.example/dns-query{?targethost,targetpath}",
		"https://p.example/q{?targetpath,targethost}",
		"https://p.example/proxy/{targethost}/{targetpath}",
		"https://p.example/proxy{/targethost,targetpath}",
		"https://p.example/q?x=1{&targethost,targetpath}",
		"https://p.example/proxy", "https://p.example:8443/dns-query", "https://[2001:db8::1]:8443/p",
		"https://p.example/x{;targethost,targetpath}", "https://p.example/x{.targethost}{/targetpath}",
		"https://p.example/{+targethost}{?targetpath}",
		"http://p.example/dns-query{?targethost,targetpath}",
		"https://{targethost}/dns-query{?targetpath}", "https://p.example:{targethost}/{targetpath}",
		"https://p.example/q{#targethost,targetpath}", "https://p.example/q{?targethost,targetpath}#x",
		"https://p.example/q{?targethost,targetpath", "https://p.example/q}{?targethost,targetpath}",
		"https://u@p.example/q{?targethost,targetpath}", "p.example/q{?targethost,targetpath}",
	} {
		f.Add(tmpl, "https://t.example/dns-query")
		f.Add(tmpl, "https://T.example:8443/a/b%20c")
	}
	f.Add("https://p.example/dns-query{?targethost,targetpath}", "https://[2001:db8::1]:853/")
	f.Fuzz(func(t *testing.T, tmpl, targetURL string) {
		p, err := ParseProxyTemplate(tmpl)
		if err != nil {
			if p != nil {
				t.Fatalf("%q: error %v with a template", tmpl, err)
			}
			return
		}
		host := p.Host()
		if host == "" || p.Origin() != "https://"+host || p.String() != tmpl {
			t.Fatalf("%q: host %q, origin %q", tmpl, host, p.Origin())
		}
		// "Exactly once", with values that cannot come from the template.
		const mh, mp = "h0st-zq9.example", "/p4th-zq9"
		if !strings.Contains(tmpl, "zq9") {
			e := p.Expand(mh, mp)
			if n := strings.Count(e, mh); n != 1 {
				t.Fatalf("%q: targethost %d times in %s", tmpl, n, e)
			}
			if n := strings.Count(e, "p4th-zq9"); n != 1 {
				t.Fatalf("%q: targetpath %d times in %s", tmpl, n, e)
			}
		}
		tg, _, err := parseTarget(targetURL)
		if err != nil {
			return
		}
		th, tp := tg.url.Host, tg.url.Path // as New expands them
		e := p.Expand(th, tp)
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host != host || u.User != nil || u.Fragment != "" {
			t.Fatalf("%q (%q, %q) expands to %q: %#v, %v", tmpl, th, tp, e, u, err)
		}
		// Variables of the query forms decode to exactly the target's.
		inQuery := map[string]bool{"targethost": p.plain != nil, "targetpath": p.plain != nil}
		for _, part := range p.parts {
			for _, v := range part.vars {
				inQuery[v] = part.op == '?' || part.op == '&'
			}
		}
		q := u.Query()
		for v, want := range map[string]string{"targethost": th, "targetpath": tp} {
			if got := q[v]; inQuery[v] && (len(got) != 1 || got[0] != want) {
				t.Fatalf("%q: %s %q in %s, want %q", tmpl, v, got, e, want)
			}
		}
	})
}

// fuzzTransport answers the client from memory: it plays the proxy and
// target (opening the query with key, sealing an answer) and records what
// the client sent.
type fuzzTransport struct {
	key  *odoh.PrivateKey
	mu   sync.Mutex
	reqs []*http.Request
	dns  [][]byte // the queries, opened
	// respond builds the response; q is the opened query's context (nil
	// if the body did not open).
	respond func(r *http.Request, q *odoh.Query) (*http.Response, error)
}

func (ft *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var q *odoh.Query
	if r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if m, err := odoh.ParseMessage(body); err == nil {
			q, _ = ft.key.OpenQuery(m)
		}
	}
	ft.mu.Lock()
	ft.reqs = append(ft.reqs, r)
	if q != nil {
		ft.dns = append(ft.dns, bytes.Clone(q.DNS))
	}
	ft.mu.Unlock()
	return ft.respond(r, q)
}

func (ft *fuzzTransport) reset(respond func(*http.Request, *odoh.Query) (*http.Response, error)) {
	ft.mu.Lock()
	ft.reqs, ft.dns, ft.respond = nil, nil, respond
	ft.mu.Unlock()
}

// fuzzBody is a response body that ends early, as a transport reports a
// body shorter than its Content-Length.
type fuzzBody struct {
	r     io.Reader
	short bool
}

func (b *fuzzBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.short {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fuzzBody) Close() error { return nil }

// fuzzHTTPResponse builds a response; lengthMode picks how the length is
// framed: unknown, exact, longer than the body (cut short), or huge.
func fuzzHTTPResponse(r *http.Request, status int, ctype, proxyStatus string, body []byte, lengthMode uint8) *http.Response {
	h := http.Header{"Location": {"https://elsewhere.example/"}, "Set-Cookie": {"track=1"}}
	if ctype != "" {
		h["Content-Type"] = []string{ctype}
	}
	if proxyStatus != "" {
		h["Proxy-Status"] = []string{proxyStatus}
	}
	n, short := int64(len(body)), false
	switch lengthMode % 4 {
	case 0:
		n = -1
	case 2:
		n, short = n+1, true
	case 3:
		n, short = odoh.MaxResponseSize+1, true
	}
	return &http.Response{Status: strconv.Itoa(status), StatusCode: status, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: h, Body: &fuzzBody{r: bytes.NewReader(body), short: short}, ContentLength: n, Request: r}
}

const (
	fuzzProxy  = "https://proxy.example/dns-query{?targethost,targetpath}"
	fuzzTarget = "https://target.example/dns-query"
)

// fuzzClient returns a client whose HTTP goes to a fuzzTransport.
func fuzzClient(tb testing.TB, src ConfigSource, static []byte, pins ...Pin) (*Client, *fuzzTransport, *odoh.PrivateKey) {
	tb.Helper()
	key, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		tb.Fatal(err)
	}
	if static == nil {
		if static, err = odoh.MarshalConfigs(key.Config()); err != nil {
			tb.Fatal(err)
		}
	}
	c, err := New(Config{Proxies: []string{fuzzProxy}, Targets: []string{fuzzTarget}, ConfigSource: src,
		StaticConfigs: static, Pins: pins, MaxAttempts: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	ft := &fuzzTransport{key: key}
	c.hc.Transport = ft
	// No background fetch (ConfigFromTarget) during a fuzz run: it would
	// interleave its requests with the fuzzed ones.
	c.configs.refreshIn = func(time.Duration) time.Duration { return 24 * time.Hour }
	return c, ft, key
}

func fuzzQuery(tb testing.TB) []byte {
	m := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	m.Id = 0x1234
	q, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return q
}

func isODoHSentinel(err error) bool {
	for _, s := range []error{odoh.ErrMalformed, odoh.ErrDecrypt, odoh.ErrKeyMismatch, odoh.ErrUnsupported, odoh.ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzResponse feeds the client arbitrary answers to a query: status,
// Content-Type, Proxy-Status, length framing and body. mode 0 sends body
// as it is; mode 1 seals body as the DNS answer to the query; mode 2 seals
// it and then flips one byte of the sealed message. The client must never
// panic; a non-200 is an *HTTPError carrying status and Proxy-Status (with
// ErrRedirect for 3xx) and no target in its URL; a 200 that is not a valid
// ODoH answer to this query is ErrBadResponse; an answer is exactly what
// the target sealed, with the query's ID.
func FuzzResponse(f *testing.F) {
	c, ft, _ := fuzzClient(f, ConfigStatic, nil)
	q := fuzzQuery(f)
	ans := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA))
	ans.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	answer, _ := ans.Pack()
	ct := odoh.ContentType
	for _, mode := range []uint8{0, 1, 2} {
		f.Add(200, ct, "", answer, mode, uint8(1), 5, false)
	}
	f.Add(200, "Application/Oblivious-DNS-Message; q=1", "", answer, uint8(1), uint8(0), 0, true)
	f.Add(200, ct, "", []byte{0}, uint8(1), uint8(1), 0, false)
	f.Add(200, ct, "", []byte{}, uint8(1), uint8(1), 0, true)
	f.Add(200, ct, "", answer, uint8(1), uint8(2), 0, false)
	f.Add(200, ct, "", answer, uint8(1), uint8(3), 0, false)
	f.Add(200, "text/plain", "", answer, uint8(1), uint8(1), 0, false)
	f.Add(200, ct, "", []byte{2, 0, 0, 0, 0}, uint8(0), uint8(1), 0, false)
	f.Add(401, ct, "odoh-proxy; received-status=401", []byte{}, uint8(0), uint8(1), 0, false)
	f.Add(307, "", "", []byte{}, uint8(0), uint8(1), 0, false)
	f.Add(502, "text/plain", "odoh-proxy; error=connection_refused", []byte("x"), uint8(0), uint8(0), 0, false)
	f.Add(0, "", "", []byte{}, uint8(0), uint8(1), 0, false)
	f.Fuzz(func(t *testing.T, status int, ctype, proxyStatus string, body []byte, mode, lengthMode uint8, flip int, exchange bool) {
		if len(body) > 4096 {
			t.Skip()
		}
		mode %= 3
		sealed := false
		ft.reset(func(r *http.Request, oq *odoh.Query) (*http.Response, error) {
			b := body
			if mode > 0 && oq != nil {
				resp, err := oq.SealResponse(body)
				if err != nil { // an empty answer: sent unsealed, so bad
					return fuzzHTTPResponse(r, status, ctype, proxyStatus, b, lengthMode), nil
				}
				if mode == 2 {
					i := int(uint(flip) % uint(len(resp)))
					resp[i] ^= byte(flip>>8) | 1
				} else {
					sealed = true
				}
				b = resp
			}
			return fuzzHTTPResponse(r, status, ctype, proxyStatus, b, lengthMode), nil
		})
		var dnsAns []byte
		var err error
		if exchange {
			m := new(dns.Msg)
			if err := m.Unpack(q); err != nil {
				t.Fatal(err)
			}
			var a *dns.Msg
			if a, err = c.Exchange(context.Background(), m); err == nil {
				if a.Id != m.Id {
					t.Fatalf("answer ID %#x for query %#x", a.Id, m.Id)
				}
				dnsAns, _ = a.Pack()
			}
		} else {
			var res *Result
			if res, err = c.Do(context.Background(), q); err == nil {
				dnsAns = res.DNS
				if res.Proxy != fuzzProxy || res.Target != fuzzTarget {
					t.Fatalf("result via %q to %q", res.Proxy, res.Target)
				}
			}
		}

		// What the client sent: one POST to the expanded proxy URL, with
		// exactly its fixed headers and the query with ID 0.
		if len(ft.reqs) != 1 || len(ft.dns) != 1 {
			t.Fatalf("%d requests, %d opened queries", len(ft.reqs), len(ft.dns))
		}
		r := ft.reqs[0]
		if r.Method != http.MethodPost || r.URL.String() != "https://proxy.example/dns-query?targethost=target.example&targetpath=%2Fdns-query" {
			t.Fatalf("%s %s", r.Method, r.URL)
		}
		if len(r.Header) != 4 || r.Header.Get("Content-Type") != ct || r.Header.Get("Accept") != ct ||
			r.Header.Get("User-Agent") != "" || r.Header.Get("Cache-Control") == "" {
			t.Fatalf("request headers %v", r.Header)
		}
		if sent := ft.dns[0]; sent[0] != 0 || sent[1] != 0 || !bytes.Equal(sent[2:], q[2:]) {
			t.Fatalf("query sent as %x", sent)
		}

		var he *HTTPError
		switch {
		case status != http.StatusOK:
			if !errors.As(err, &he) || he.StatusCode != status || he.ProxyStatus != proxyStatus || strings.Contains(he.URL, "?") {
				t.Fatalf("status %d: error %#v", status, err)
			}
			if (status >= 300 && status < 400) != errors.Is(err, ErrRedirect) {
				t.Fatalf("status %d: error %v", status, err)
			}
		case !odoh.HasContentType([]string{ctype}, odoh.ContentType):
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("Content-Type %q: error %v", ctype, err)
			}
		case !sealed || lengthMode%4 >= 2:
			if !errors.Is(err, ErrBadResponse) || errors.As(err, &he) {
				t.Fatalf("bad body accepted or mistyped: %v", err)
			}
			if mode == 2 && lengthMode%4 < 2 && !isODoHSentinel(err) {
				t.Fatalf("tampered answer: error %v does not wrap the odoh sentinel", err)
			}
		case len(body) < 2:
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("%d-byte answer: error %v", len(body), err)
			}
		case exchange:
			// The answer unpacks as the client sees it: with the query's
			// ID restored (a compression pointer into the header reads it).
			withID := append(bytes.Clone(q[:2]), body[2:]...)
			if new(dns.Msg).Unpack(withID) != nil {
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("unparsable answer: error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("valid answer: %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("valid answer: %v", err)
			}
			if dnsAns[0] != q[0] || dnsAns[1] != q[1] || !bytes.Equal(dnsAns[2:], body[2:]) {
				t.Fatalf("answer %x, target sealed %x", dnsAns, body)
			}
		}
	})
}

// FuzzConfigsResponse feeds the client's configs fetch (from the target,
// or through the proxy's relay with a key pin) arbitrary answers. Errors
// wrap ErrConfig (and the HTTPError for a non-200); what parses is exactly
// what odoh.ParseConfigs reads from the body (through the relay: only the
// pinned config, and ErrPinMismatch without it), cached for a max-age
// within [MinConfigTTL, MaxConfigTTL] (DefaultConfigTTL without one).
func FuzzConfigsResponse(f *testing.F) {
	key, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		f.Fatal(err)
	}
	good, _ := odoh.MarshalConfigs(key.Config())
	direct, dft, _ := fuzzClient(f, ConfigFromTarget, nil)
	relay, rft, _ := fuzzClient(f, ConfigViaRelay, nil, Pin{Host: "target.example", KeyID: key.Config().KeyID()})
	f.Add(200, "max-age=300", good, uint8(1), false)
	f.Add(200, "", good, uint8(0), true)
	f.Add(200, "public, MAX-AGE=\"5\"", good, uint8(1), true)
	f.Add(200, "max-age=99999999999999", good, uint8(1), false)
	f.Add(200, "max-age=-1, max-age=60", good, uint8(1), false)
	f.Add(200, "", good[:len(good)-1], uint8(1), false)
	f.Add(200, "", good, uint8(2), false)
	f.Add(200, "", []byte{0, 4, 0xff, 3, 0, 0}, uint8(1), false)
	f.Add(404, "", []byte("no"), uint8(1), true)
	f.Add(302, "", []byte{}, uint8(1), false)
	f.Fuzz(func(t *testing.T, status int, cc string, body []byte, lengthMode uint8, viaProxy bool) {
		if lengthMode%4 == 3 {
			lengthMode = 2 // Content-Length beyond odoh.MaxResponseSize is FuzzResponse's
		}
		c, ft := direct, dft
		wantURL := "https://target.example/.well-known/odohconfigs"
		if viaProxy {
			c, ft = relay, rft
			wantURL = "https://proxy.example/.well-known/odohconfigs?targethost=target.example"
		}
		ft.reset(func(r *http.Request, _ *odoh.Query) (*http.Response, error) {
			resp := fuzzHTTPResponse(r, status, "application/octet-stream", "", body, lengthMode)
			if cc != "" {
				resp.Header["Cache-Control"] = []string{cc}
			}
			return resp, nil
		})
		got, err := c.Configs(context.Background())
		if len(ft.reqs) != 1 || ft.reqs[0].Method != http.MethodGet || ft.reqs[0].URL.String() != wantURL ||
			len(ft.reqs[0].Header) != 1 || ft.reqs[0].Header.Get("User-Agent") != "" {
			t.Fatalf("configs fetched with %d requests: %v", len(ft.reqs), ft.reqs)
		}
		want, perr := odoh.ParseConfigs(body)
		var he *HTTPError
		switch {
		case status != http.StatusOK:
			if !errors.Is(err, ErrConfig) || !errors.As(err, &he) || he.StatusCode != status || strings.Contains(he.URL, "?") {
				t.Fatalf("status %d: error %v", status, err)
			}
			return
		case lengthMode%4 == 2 || len(body) > odoh.MaxConfigsSize:
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("short or oversized body: error %v", err)
			}
			return
		case perr != nil:
			if !errors.Is(err, ErrConfig) || !isODoHSentinel(err) {
				t.Fatalf("bad configs: error %v", err)
			}
			return
		}
		if viaProxy {
			var pinned []*odoh.Config
			for _, w := range want {
				if w.Equal(key.Config()) {
					pinned = append(pinned, w)
				}
			}
			if len(pinned) == 0 {
				if !errors.Is(err, ErrConfig) || !errors.Is(err, ErrPinMismatch) {
					t.Fatalf("no pinned config: error %v", err)
				}
				return
			}
			want = pinned
		}
		if err != nil || len(got) != 1 || len(got[0].Configs) != len(want) {
			t.Fatalf("configs %v, %v; want %d", got, err, len(want))
		}
		for i := range want {
			if !got[0].Configs[i].Equal(want[i]) {
				t.Fatalf("config %d differs", i)
			}
		}
		if a := got[0].MaxAge; a != DefaultConfigTTL && (a < MinConfigTTL || a > MaxConfigTTL) {
			t.Fatalf("max-age %v from %q", a, cc)
		}
	})
}

// fuzzDNSWriter is a dns.ResponseWriter that keeps what it is given.
type fuzzDNSWriter struct {
	udp  bool
	msgs []*dns.Msg
}

func (w *fuzzDNSWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *fuzzDNSWriter) RemoteAddr() net.Addr {
	if w.udp {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}
func (w *fuzzDNSWriter) WriteMsg(m *dns.Msg) error { w.msgs = append(w.msgs, m); return nil }
func (w *fuzzDNSWriter) Write([]byte) (int, error) { return 0, errors.New("unexpected raw write") }
func (w *fuzzDNSWriter) Close() error              { return nil }
func (w *fuzzDNSWriter) TsigStatus() error         { return nil }
func (w *fuzzDNSWriter) TsigTimersOnly(bool)       {}
func (w *fuzzDNSWriter) Hijack()                   {}

// FuzzStub runs the stub's query handling on any query the DNS library
// reads off the wire, answered by a target that seals any answer bytes:
// exactly one reply per query, with the query's ID, that packs (within
// the client's UDP size over UDP); NOTIMP for anything but one question of
// a standard query (FORMERR over UDP for a query or NOTIFY without exactly
// one question, and no answer to a response: the DNS server's accept
// rule), SERVFAIL when ODoH fails. Asked again with the target
// gone, the stub answers from its cache the same rcode and records, or
// SERVFAIL.
//
// An exec costs about 0.25 ms (two HPKE exchanges), so Go's minimizer,
// which tries removing every span of a new input's bytes, spends its whole
// -fuzzminimizetime (60s by default) on any new input with a kilobytes-long
// answer, counting no execs meanwhile: run it with -fuzzminimizetime=2s, as
// scripts/fuzz.sh does.
func FuzzStub(f *testing.F) {
	c, ft, _ := fuzzClient(f, ConfigStatic, nil)
	s, err := NewStub(StubConfig{Client: c, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Timeout: time.Second, MaxInFlight: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })

	q := fuzzQuery(f)
	m := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	m.SetEdns0(1232, true)
	qEDNS, _ := m.Pack()
	a := new(dns.Msg).SetReply(m)
	for i := range 40 {
		a.Answer = append(a.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(60 + i)}, Txt: []string{strings.Repeat("x", 60)}})
	}
	big, _ := a.Pack()
	nx := new(dns.Msg).SetRcode(m, dns.RcodeNameError)
	nx.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300}, Ns: "ns.example.com.", Mbox: "h.example.com.", Minttl: 30}}
	nxb, _ := nx.Pack()
	for _, ans := range [][]byte{big, nxb, {1, 2}} {
		f.Add(q, ans, true)
		f.Add(qEDNS, ans, false)
	}
	notimp := new(dns.Msg)
	notimp.Opcode = dns.OpcodeNotify
	nb, _ := notimp.Pack()
	f.Add(nb, big, true)

	f.Fuzz(func(t *testing.T, query, answer []byte, udp bool) {
		r := new(dns.Msg)
		if r.Unpack(query) != nil || len(answer) > 4096 {
			return // the DNS server answers FORMERR itself; no handler runs
		}
		var err error
		if s.cache, err = dnscache.New(dnscache.Config{Size: 8}); err != nil {
			t.Fatal(err)
		}
		ft.reset(func(hr *http.Request, oq *odoh.Query) (*http.Response, error) {
			if oq == nil {
				return fuzzHTTPResponse(hr, 400, "", "", nil, 1), nil
			}
			body, err := oq.SealResponse(answer)
			if err != nil {
				return nil, err
			}
			return fuzzHTTPResponse(hr, 200, odoh.ContentType, "", body, 1), nil
		})
		if udp && r.Response {
			// The DNS server's accept rule: a response gets no answer.
			if s.answerDatagram(query, nil) != nil || len(ft.reqs) != 0 {
				t.Fatal("answered a response")
			}
			return
		}
		first := fuzzServe(t, s, query, r, udp)
		ft.reset(func(*http.Request, *odoh.Query) (*http.Response, error) {
			return nil, errors.New("target gone")
		})
		second := fuzzServe(t, s, query, r, udp)
		if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
			want := dns.RcodeNotImplemented
			if udp && (r.Opcode == dns.OpcodeQuery || r.Opcode == dns.OpcodeNotify) && !acceptedCounts(query) {
				want = dns.RcodeFormatError // the DNS server's accept rule
			}
			if first.Rcode != want || len(ft.reqs) != 0 {
				t.Fatalf("non-query answered %s after %d requests", dns.RcodeToString[first.Rcode], len(ft.reqs))
			}
			return
		}
		if second.Rcode == dns.RcodeServerFailure {
			return
		}
		if second.Rcode != first.Rcode || len(second.Answer) != len(first.Answer) || len(second.Ns) != len(first.Ns) {
			t.Fatalf("cached answer %s/%d/%d, first %s/%d/%d", dns.RcodeToString[second.Rcode], len(second.Answer),
				len(second.Ns), dns.RcodeToString[first.Rcode], len(first.Answer), len(first.Ns))
		}
	})
}

// fuzzServe sends r to the stub and checks the one reply: over UDP as a
// datagram to the stub's UDP path, over TCP to ServeDNS.
func fuzzServe(t *testing.T, s *Stub, q []byte, r *dns.Msg, udp bool) *dns.Msg {
	t.Helper()
	if udp {
		wire := s.answerDatagram(q, nil)
		if wire == nil {
			t.Fatal("no reply")
		}
		if len(wire) > udpSize(r) {
			t.Fatalf("%d-byte UDP reply, client takes %d", len(wire), udpSize(r))
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(wire); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if resp.Id != r.Id {
			t.Fatalf("reply ID %#x for query %#x", resp.Id, r.Id)
		}
		return resp
	}
	w := &fuzzDNSWriter{}
	s.ServeDNS(w, r.Copy())
	if len(w.msgs) != 1 {
		t.Fatalf("%d replies", len(w.msgs))
	}
	resp := w.msgs[0]
	if resp.Id != r.Id {
		t.Fatalf("reply ID %#x for query %#x", resp.Id, r.Id)
	}
	if _, err := resp.Pack(); err != nil {
		t.Fatalf("reply does not pack: %v", err)
	}
	return resp
}

// acceptedCounts is miekg/dns's accept rule for a QUERY or NOTIFY on the
// header's section counts, which a lenient Unpack need not match: one
// question, at most one answer (NOTIFY's SOA) and one authority record
// (IXFR's SOA), at most two additional ones (OPT and TSIG).
func acceptedCounts(msg []byte) bool {
	count := func(i int) uint16 { return binary.BigEndian.Uint16(msg[4+2*i:]) }
	return len(msg) >= 12 && count(0) == 1 && count(1) <= 1 && count(2) <= 1 && count(3) <= 2
}

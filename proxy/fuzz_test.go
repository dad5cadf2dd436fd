package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/odoh"
)

// The fuzz handlers' limits: small, so that 413 and the response-size 502
// are within the fuzzer's reach.
const (
	fuzzMaxRequest  = 512
	fuzzMaxResponse = 1024
)

// fuzzAllow is the allowlist of the fuzz handlers, in mixed spellings, and
// fuzzAllowKeys the canonical keys it must allow (worked out by hand, not by
// the parser under test).
func fuzzAllow() []string {
	return []string{"t.example", "T2.Example:8443", "127.0.0.1:8443", "[2001:DB8::1]:853", "192.0.2.1"}
}

func fuzzAllowKeys() map[string]bool {
	return map[string]bool{"t.example:443": true, "t2.example:8443": true, "127.0.0.1:8443": true,
		"[2001:db8::1]:853": true, "192.0.2.1:443": true}
}

// fuzzOpenPorts are the ports of the open-relay fuzz handler.
func fuzzOpenPorts() []uint16 { return []uint16{443, 8443} }

// fuzzCall is one request the in-memory upstream received.
type fuzzCall struct {
	method        string
	url           url.URL
	host          string
	header        http.Header
	body          []byte
	contentLength int64
}

// fuzzResponse is what the in-memory upstream answers.
type fuzzResponse struct {
	err         error
	status      int
	ctype, cc   string
	body        []byte
	knownLength bool
}

// fuzzUpstream is an http.RoundTripper that records requests and answers
// from memory: the proxy's whole request path runs without a socket.
type fuzzUpstream struct {
	mu    sync.Mutex
	calls []fuzzCall
	resp  fuzzResponse
}

func (u *fuzzUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	c := fuzzCall{method: r.Method, url: *r.URL, host: r.Host, header: r.Header.Clone(), contentLength: r.ContentLength}
	if r.Body != nil {
		// A transport reads and closes the body; the handler's buffer is
		// reused afterwards, so copy it.
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		c.body = bytes.Clone(b)
		_ = r.Body.Close()
	}
	u.mu.Lock()
	u.calls = append(u.calls, c)
	resp := u.resp
	u.mu.Unlock()
	if resp.err != nil {
		return nil, resp.err
	}
	h := http.Header{
		// Headers a target could track clients with: never relayed.
		"Set-Cookie":   {"track=1"},
		"Location":     {"https://elsewhere.example/"},
		"Alt-Svc":      {`h3=":443"`},
		"X-Target-Tag": {"secret"},
	}
	if resp.ctype != "" {
		h["Content-Type"] = []string{resp.ctype}
	}
	if resp.cc != "" {
		h["Cache-Control"] = []string{resp.cc}
	}
	n := int64(-1)
	if resp.knownLength {
		n = int64(len(resp.body))
	}
	return &http.Response{
		Status: strconv.Itoa(resp.status), StatusCode: resp.status, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: h, Body: io.NopCloser(bytes.NewReader(resp.body)), ContentLength: n, Request: r,
	}, nil
}

func (u *fuzzUpstream) take(resp fuzzResponse) {
	u.mu.Lock()
	u.calls, u.resp = nil, resp
	u.mu.Unlock()
}

func (u *fuzzUpstream) recorded() []fuzzCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

// fuzzHandler returns a handler whose upstream is a fuzzUpstream. Rate
// limiting stays on (the key derivation runs for every request) with a
// rate no sequential fuzzer can exhaust.
func fuzzHandler(tb testing.TB, open bool) (*Handler, *fuzzUpstream) {
	tb.Helper()
	h := fuzzRealHandler(tb, open)
	up := &fuzzUpstream{}
	h.upstream = up
	return h, up
}

// fuzzRealHandler is fuzzHandler's handler with its real transport to
// targets.
func fuzzRealHandler(tb testing.TB, open bool) *Handler {
	tb.Helper()
	pol := Policy{Allow: fuzzAllow()}
	if open {
		pol.AllowOpen, pol.OpenPorts = true, fuzzOpenPorts()
	}
	h, err := New(Config{
		Policy: pol, MaxRequestBody: fuzzMaxRequest, MaxResponseBody: fuzzMaxResponse,
		ClientRate: 1e12, ClientBurst: 1 << 30, Logger: slog.New(slog.DiscardHandler),
		Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS while fuzzing")
		}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// fuzzUpstreamError turns a fuzzed byte into one of the errors real
// transports return (or none).
func fuzzUpstreamError(kind uint8) error {
	switch kind % 8 {
	case 1:
		return io.EOF
	case 2:
		return &dialError{odoh.ProxyDestinationIPProhibited, errors.New("address not allowed")}
	case 3:
		return &dialError{odoh.ProxyDNSError, &net.DNSError{Err: "no such host", Name: "t.example"}}
	case 4:
		return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case 5:
		return &url.Error{Op: "Post", URL: "https://t.example/", Err: x509.UnknownAuthorityError{}}
	}
	return nil
}

// fuzzQueryArgs is the test's own reading of a raw query: the raw values of
// every targethost and targetpath parameter.
func fuzzQueryArgs(raw string) (hosts, paths []string) {
	for kv := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "targethost":
			hosts = append(hosts, v)
		case "targetpath":
			paths = append(paths, v)
		}
	}
	return hosts, paths
}

// fuzzRequest is one client request of the fuzz targets.
type fuzzRequest struct {
	method, path, rawQuery string
	ctype                  []string
	body                   []byte
	knownLength            bool
	remote                 string
}

// fuzzExchange serves req with h and checks every invariant of the answer
// and of what reached the upstream.
func fuzzExchange(t *testing.T, h *Handler, up *fuzzUpstream, open bool, req fuzzRequest, resp fuzzResponse) {
	up.take(resp)
	h.configs.purge() // each exec fetches afresh: no state between execs
	r := &http.Request{
		Method: req.method, URL: &url.URL{Path: req.path, RawQuery: req.rawQuery},
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: http.Header{}, Body: http.NoBody,
		RemoteAddr: req.remote, RequestURI: req.path,
	}
	if len(req.ctype) > 0 {
		r.Header["Content-Type"] = req.ctype
	}
	if len(req.body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(req.body))
		r.ContentLength = -1
		if req.knownLength {
			r.ContentLength = int64(len(req.body))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r) // must not panic, whatever the input
	calls := up.recorded()
	got := rec.Result()
	ps := got.Header.Get("Proxy-Status")

	if len(calls) == 0 {
		// Not forwarded: a 4xx or 5xx the proxy made itself, which says
		// why in Proxy-Status (the 404 for a path the proxy does not
		// serve is no proxy answer, and carries none).
		if rec.Code < 400 || rec.Code > 599 {
			t.Fatalf("not forwarded, yet status %d", rec.Code)
		}
		if req.path == odoh.QueryPath || req.path == queryPathAlias || req.path == odoh.ConfigsPath {
			if !strings.HasPrefix(ps, DefaultName+"; error=") {
				t.Fatalf("status %d with Proxy-Status %q", rec.Code, ps)
			}
		} else if rec.Code != http.StatusNotFound {
			t.Fatalf("unknown path answered %d", rec.Code)
		}
		if cc := got.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("error with Cache-Control %q", cc)
		}
		return
	}
	if len(calls) != 1 {
		t.Fatalf("%d upstream requests for one client request", len(calls))
	}
	c := calls[0]

	// What was forwarded went to one allowed target, over https, to a URL
	// built from the decoded arguments and nothing else.
	hosts, paths := fuzzQueryArgs(req.rawQuery)
	if len(hosts) != 1 {
		t.Fatalf("forwarded with %d targethost parameters", len(hosts))
	}
	host, err := url.PathUnescape(hosts[0])
	if err != nil {
		t.Fatalf("forwarded with undecodable targethost %q", hosts[0])
	}
	tg := fuzzCheckHost(t, host)
	u := c.url
	if u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || u.RawFragment != "" {
		t.Fatalf("upstream URL %#v", u)
	}
	if u.Host != tg.urlHost || c.host != u.Host {
		t.Fatalf("upstream host %q (Host %q) for targethost %q, want %q", u.Host, c.host, host, tg.urlHost)
	}
	if !fuzzAllowed(tg, open) {
		t.Fatalf("forwarded to %s, outside the policy (open=%v)", tg.key, open)
	}
	// The URL means the same to whoever parses it next.
	again, err := url.Parse(u.String())
	if err != nil || again.Host != u.Host || again.Path != u.Path || again.RawQuery != "" || again.Fragment != "" {
		t.Fatalf("upstream URL %s re-parses as %#v (%v)", u.String(), again, err)
	}

	switch req.path {
	case odoh.QueryPath, queryPathAlias:
		if len(paths) != 1 {
			t.Fatalf("forwarded with %d targetpath parameters", len(paths))
		}
		path, err := url.PathUnescape(paths[0])
		if err != nil || u.Path != path {
			t.Fatalf("upstream path %q for targetpath %q", u.Path, paths[0])
		}
		if req.method != http.MethodPost || len(req.ctype) != 1 || !fuzzIsODoHType(req.ctype[0]) ||
			len(req.body) == 0 || len(req.body) > fuzzMaxRequest {
			t.Fatalf("forwarded a bad request: %s, Content-Type %q, %d-byte body", req.method, req.ctype, len(req.body))
		}
		if c.method != http.MethodPost || !bytes.Equal(c.body, req.body) || c.contentLength != int64(len(req.body)) {
			t.Fatalf("upstream got %s with %d bytes (length %d), client sent %d", c.method, len(c.body), c.contentLength, len(req.body))
		}
		want := http.Header{"Content-Type": {odoh.ContentType}, "Accept": {odoh.ContentType}, "User-Agent": {DefaultUserAgent}}
		fuzzSameHeader(t, c.header, want)
		fuzzCheckQueryAnswer(t, rec, resp)
	case odoh.ConfigsPath:
		if req.method != http.MethodGet && req.method != http.MethodHead {
			t.Fatalf("configs fetched for a %s", req.method)
		}
		if c.method != http.MethodGet || u.Path != odoh.ConfigsPath || len(c.body) != 0 {
			t.Fatalf("configs fetch %s %s with %d bytes", c.method, u.Path, len(c.body))
		}
		fuzzSameHeader(t, c.header, http.Header{"User-Agent": {DefaultUserAgent}})
		fuzzCheckConfigsAnswer(t, rec, req.method, resp)
	default:
		t.Fatalf("forwarded a request for %q", req.path)
	}
}

// fuzzCheckHost checks the parse of a targethost that was forwarded: it
// parses, and canonical means lower-cased (names, IPv4) or the address's
// canonical text (IPv6), with ":443" implied.
func fuzzCheckHost(t *testing.T, host string) *target {
	t.Helper()
	tg, err := parseTargetHost(host)
	if err != nil {
		t.Fatalf("forwarded for targethost %q, which does not parse: %v", host, err)
	}
	if strings.HasPrefix(host, "[") {
		inner, _, _ := strings.Cut(host[1:], "]")
		if a, err := netip.ParseAddr(inner); err != nil || a != tg.addr {
			t.Fatalf("IPv6 targethost %q parsed as %v", host, tg.addr)
		}
		return tg
	}
	if l := strings.ToLower(host); l != tg.key && l != tg.urlHost {
		t.Fatalf("targethost %q canonicalised to %q / %q", host, tg.key, tg.urlHost)
	}
	return tg
}

// fuzzAllowed is the policy of the fuzz handlers, worked out without it.
func fuzzAllowed(tg *target, open bool) bool {
	if fuzzAllowKeys()[tg.key] {
		return true
	}
	if !open {
		return false
	}
	portOK := false
	for _, p := range fuzzOpenPorts() {
		portOK = portOK || p == tg.port
	}
	return portOK && (!tg.addr.IsValid() || !isSpecial(tg.addr))
}

func fuzzIsODoHType(v string) bool {
	mt, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(mt), odoh.ContentType)
}

func fuzzSameHeader(t *testing.T, got, want http.Header) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("upstream header %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if g := got[k]; len(g) != len(v) || g[0] != v[0] {
			t.Fatalf("upstream header %v, want exactly %v", got, want)
		}
	}
}

// fuzzCheckLeaks fails if a header the target sent for itself reached the
// client.
func fuzzCheckLeaks(t *testing.T, hdr http.Header) {
	t.Helper()
	for _, k := range []string{"Set-Cookie", "Location", "Alt-Svc", "X-Target-Tag"} {
		if _, ok := hdr[k]; ok {
			t.Fatalf("target header %s relayed to the client", k)
		}
	}
}

// fuzzCheckQueryAnswer checks the client's answer to a forwarded query.
func fuzzCheckQueryAnswer(t *testing.T, rec *httptest.ResponseRecorder, resp fuzzResponse) {
	t.Helper()
	hdr := rec.Result().Header
	fuzzCheckLeaks(t, hdr)
	ps := hdr.Get("Proxy-Status")
	wantErr := func(codes []int, kind odoh.ProxyError) {
		t.Helper()
		okCode := false
		for _, c := range codes {
			okCode = okCode || rec.Code == c
		}
		if !okCode || !strings.HasPrefix(ps, DefaultName+"; error="+string(kind)) {
			t.Fatalf("status %d, Proxy-Status %q; want %v with error=%s", rec.Code, ps, codes, kind)
		}
	}
	switch {
	case resp.err != nil:
		wantErr([]int{403, 502, 504}, "")
	case len(resp.body) > fuzzMaxResponse:
		wantErr([]int{502}, odoh.ProxyHTTPResponseBodySize)
	case resp.status <= 0: // no status an RFC 9209 received-status can carry
		wantErr([]int{502}, odoh.ProxyHTTPProtocolError+"; details=")
	case resp.status < 200 || resp.status > 599:
		wantErr([]int{502}, odoh.ProxyHTTPProtocolError+odoh.ProxyError("; received-status="+strconv.Itoa(resp.status)))
	case resp.status/100 == 2 && !fuzzIsODoHType(resp.ctype):
		wantErr([]int{502}, odoh.ProxyHTTPProtocolError+odoh.ProxyError("; received-status="+strconv.Itoa(resp.status)))
	default:
		if rec.Code != resp.status || ps != DefaultName+"; received-status="+strconv.Itoa(resp.status) {
			t.Fatalf("status %d, Proxy-Status %q; target said %d", rec.Code, ps, resp.status)
		}
		if !bytes.Equal(rec.Body.Bytes(), resp.body) {
			t.Fatalf("body changed: %d bytes, target sent %d", rec.Body.Len(), len(resp.body))
		}
		if resp.ctype != "" && hdr.Get("Content-Type") != resp.ctype {
			t.Fatalf("Content-Type %q, target sent %q", hdr.Get("Content-Type"), resp.ctype)
		}
		wantCC := resp.cc
		if wantCC == "" {
			wantCC = "no-store"
		}
		if cc := hdr.Get("Cache-Control"); cc != wantCC {
			t.Fatalf("Cache-Control %q, target sent %q", cc, resp.cc)
		}
		if cl := hdr.Get("Content-Length"); cl != strconv.Itoa(len(resp.body)) {
			t.Fatalf("Content-Length %q for %d bytes", cl, len(resp.body))
		}
	}
}

// fuzzCheckConfigsAnswer checks the client's answer to a relayed configs
// fetch.
func fuzzCheckConfigsAnswer(t *testing.T, rec *httptest.ResponseRecorder, method string, resp fuzzResponse) {
	t.Helper()
	hdr := rec.Result().Header
	fuzzCheckLeaks(t, hdr)
	ps := hdr.Get("Proxy-Status")
	// Relayed: a well-framed list whose configs of our version parse (the
	// contents are odoh's to judge); none of them need be supported.
	_, perr := odoh.ParseConfigs(resp.body)
	isConfigs := perr == nil || errors.Is(perr, odoh.ErrUnsupported) && !errors.Is(perr, odoh.ErrMalformed)
	if isConfigs && !fuzzWellFramedConfigs(resp.body) {
		t.Fatalf("odoh.ParseConfigs accepted the badly framed %x", resp.body)
	}
	if resp.err != nil || resp.status != http.StatusOK || len(resp.body) > odoh.MaxConfigsSize || !isConfigs {
		if rec.Code != 403 && rec.Code != 502 && rec.Code != 504 || !strings.HasPrefix(ps, DefaultName+"; error=") {
			t.Fatalf("failed configs fetch answered %d, Proxy-Status %q", rec.Code, ps)
		}
		return
	}
	if rec.Code != http.StatusOK || ps != DefaultName+"; received-status=200" {
		t.Fatalf("configs answered %d, Proxy-Status %q", rec.Code, ps)
	}
	wantBody := resp.body
	if method == http.MethodHead {
		wantBody = nil
	}
	if !bytes.Equal(rec.Body.Bytes(), wantBody) {
		t.Fatalf("configs body of %d bytes, target sent %d", rec.Body.Len(), len(resp.body))
	}
	// Whatever type the target claimed, the relay serves opaque bytes.
	if ct := hdr["Content-Type"]; len(ct) != 1 || ct[0] != "application/octet-stream" || hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("configs Content-Type %q, X-Content-Type-Options %q; target sent %q", ct, hdr.Get("X-Content-Type-Options"), resp.ctype)
	}
	age, ok := strings.CutPrefix(hdr.Get("Cache-Control"), "max-age=")
	if n, err := strconv.Atoi(age); !ok || err != nil || n < 0 || time.Duration(n)*time.Second > DefaultConfigsMaxAge {
		t.Fatalf("configs Cache-Control %q", hdr.Get("Cache-Control"))
	}
}

// fuzzWellFramedConfigs is the test's own reading of an ObliviousDoHConfigs
// list's framing: a u16 length covering the rest exactly, holding whole
// {u16 version, u16 length, contents} configs, at least one.
func fuzzWellFramedConfigs(b []byte) bool {
	if len(b) < 2 || int(b[0])<<8|int(b[1]) != len(b)-2 || len(b) == 2 {
		return false
	}
	for rest := b[2:]; len(rest) > 0; {
		if len(rest) < 4 {
			return false
		}
		n := int(rest[2])<<8 | int(rest[3])
		if len(rest) < 4+n {
			return false
		}
		rest = rest[4+n:]
	}
	return true
}

// FuzzServeHTTP drives the whole request path (method, path, query,
// Content-Type, body, peer address) and the target's answer (status,
// headers, body, or a transport error) through ServeHTTP, against the
// allowlist and against an open relay. Nothing may panic; anything
// forwarded goes to an allowed target as https://HOST/PATH with exactly the
// proxy's own header set; anything not forwarded is a 4xx/5xx with
// Proxy-Status; what the target answers is relayed unchanged, minus its
// own headers, or refused with 502.
func FuzzServeHTTP(f *testing.F) {
	closed, closedUp := fuzzHandler(f, false)
	open, openUp := fuzzHandler(f, true)
	ct := odoh.ContentType
	add := func(method, path, query, ctype string, nCT uint8, body string, open bool, remote string, status int, upCT, upBody string, upErr uint8) {
		f.Add(method, path, query, ctype, nCT, []byte(body), true, remote, open, status, upCT, "", []byte(upBody), upErr)
	}
	good := "targethost=t.example&targetpath=%2Fdns-query"
	add("POST", odoh.QueryPath, good, ct, 1, "q", false, "192.0.2.9:1234", 200, ct, "answer", 0)
	add("POST", queryPathAlias, "targethost=T2.example:8443&targetpath=/x/y", "Application/Oblivious-DNS-Message; x=1", 1, "q", false, "[2001:db8::9]:5", 401, "text/plain", "stale key", 0)
	add("POST", odoh.QueryPath, "targethost=%5B2001:db8:0::1%5D:853&targetpath=%2Fq", ct, 1, "q", false, "[::ffff:10.0.0.1]:1", 200, "text/html", "<p>", 0)
	add("POST", odoh.QueryPath, "targethost=other.example&targetpath=%2Fdns-query", ct, 1, "q", true, "bad", 307, "", "", 0)
	add("POST", odoh.QueryPath, "targethost=10.0.0.1&targetpath=%2Fdns-query", ct, 1, "q", true, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, "targethost=other.example:8443&targetpath=%2Fa&x=1", ct, 1, "q", true, "1.2.3.4:5", 200, ct, strings.Repeat("a", fuzzMaxResponse+1), 0)
	add("POST", odoh.QueryPath, good, ct, 1, "q", false, "1.2.3.4:5", 200, ct, "", 2)
	add("POST", odoh.QueryPath, good, ct, 1, "q", false, "1.2.3.4:5", 200, ct, "", 5)
	add("POST", odoh.QueryPath, good+"&targethost=t.example", ct, 1, "q", false, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, "targethost=t.example%40evil.example&targetpath=%2F%2Fevil", ct, 1, "q", true, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, "targethost=t.example&targetpath=%2F..%2Fadmin", ct, 1, "q", false, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, good, ct, 2, "q", false, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, good, "", 0, "q", false, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, good, ct, 1, strings.Repeat("q", fuzzMaxRequest+1), false, "", 200, ct, "", 0)
	add("POST", odoh.QueryPath, good, ct, 1, "", false, "", 200, ct, "", 0)
	add("GET", odoh.QueryPath, good, ct, 1, "", false, "", 200, ct, "", 0)
	add("GET", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "192.0.2.9:1", 200, "application/octet-stream", "\x00\x01x", 0)
	add("HEAD", odoh.ConfigsPath, "targethost=127.0.0.1:8443", "", 0, "", false, "", 200, "text/plain; charset=x", "cfg", 0)
	add("GET", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "", 200, "application/octet-stream", string(fuzzConfigs(f)), 0)
	add("GET", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "", 200, "text/html", "\x00\x08\xff\xff\x00\x04<b>x", 0)
	add("GET", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "", 404, "", "no", 0)
	add("GET", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "", 200, "", "", 0)
	add("POST", odoh.ConfigsPath, "targethost=t.example", "", 0, "", false, "", 200, "", "", 0)
	add("GET", "/other", "", "", 0, "", false, "", 200, "", "", 0)
	// Statuses a target can send that must not be relayed (they panicked
	// WriteHeader before serveQuery answered them with 502).
	for _, st := range []int{42, 99, 101, 103, 600, 1000, -1} {
		add("POST", odoh.QueryPath, good, ct, 1, "q", false, "192.0.2.9:1234", st, ct, "answer", 0)
	}

	f.Fuzz(func(t *testing.T, method, path, query, ctype string, nCT uint8, body []byte, knownLength bool,
		remote string, isOpen bool, status int, upCT, upCC string, upBody []byte, upErr uint8) {
		req := fuzzRequest{method: method, path: path, rawQuery: query, body: body, knownLength: knownLength, remote: remote}
		for range nCT % 3 {
			req.ctype = append(req.ctype, ctype)
		}
		resp := fuzzResponse{err: fuzzUpstreamError(upErr), status: status, ctype: upCT, cc: upCC,
			body: upBody, knownLength: upErr&0x80 == 0}
		h, up := closed, closedUp
		if isOpen {
			h, up = open, openUp
		}
		fuzzExchange(t, h, up, isOpen, req, resp)
	})
}

// FuzzTargetQuery fuzzes only the raw query of an otherwise valid ODoH
// POST: the targethost/targetpath extraction, validation, policy check
// and upstream-URL building, with the invariants of FuzzServeHTTP.
func FuzzTargetQuery(f *testing.F) {
	closed, closedUp := fuzzHandler(f, false)
	open, openUp := fuzzHandler(f, true)
	for _, q := range []string{
		"targethost=t.example&targetpath=%2Fdns-query",
		"targetpath=/dns-query&targethost=T.EXAMPLE:443",
		"targethost=t2.example%3A8443&targetpath=%2Fa%2Fb-c_d.e~f",
		"targethost=[2001:db8::1]:853&targetpath=%2F",
		"targethost=%5B2001:0db8::0001%5D:853&targetpath=%2Fx",
		"targethost=192.0.2.1:443&targetpath=%2Fdns-query",
		"targethost=127.0.0.1:8443&targetpath=/a+b",
		"targethost=127.1:8443&targetpath=%2F",
		"targethost=0x7f.0.0.1&targetpath=%2F",
		"targethost=[::ffff:127.0.0.1]&targetpath=%2F",
		"targethost=[fe80::1%25lo]&targetpath=%2F",
		"targethost=user:pass@t.example&targetpath=%2F",
		"targethost=t.example%2F@evil.example&targetpath=%2F",
		"targethost=t.example%0D%0AHost:x&targetpath=%2F",
		"targethost=t.example&targetpath=%2F%2Fevil.example%2F",
		"targethost=t.example&targetpath=%40evil.example%2F",
		"targethost=t.example&targetpath=%2Fdns-query%3Fx%23y",
		"targethost=t.example&targetpath=%252F%252F",
		"targethost=t.example&targetpath=https:%2F%2Fevil%2F",
		"targethost=xn--bcher-kva.example&targetpath=%2F",
		"targethost=other.example:8443&targetpath=%2F",
		"targethost=8.8.8.8&targetpath=%2Fdns-query",
		"targethost=t.example&targethost=t.example&targetpath=%2F",
		"targethost=t.example&targetpath=%2F&targetpath=%2F",
		"targethost=&targetpath=%2F",
		"targethost=t.example&targetpath=%2",
		"x=1&targethost=t.example&targetpath=%2Fdns-query&y",
	} {
		f.Add(q, false)
		f.Add(q, true)
	}
	f.Fuzz(func(t *testing.T, query string, isOpen bool) {
		h, up := closed, closedUp
		if isOpen {
			h, up = open, openUp
		}
		req := fuzzRequest{method: http.MethodPost, path: odoh.QueryPath, rawQuery: query,
			ctype: []string{odoh.ContentType}, body: []byte("q"), knownLength: true, remote: "192.0.2.9:1"}
		fuzzExchange(t, h, up, isOpen, req, fuzzResponse{status: 200, ctype: odoh.ContentType, body: []byte("a"), knownLength: true})
	})
}

// FuzzParseTargetHost: what parses is canonical (lower case, the
// address's own text, ":443" implied), parses again to itself, and makes
// an https URL whose host is exactly the target, with no userinfo, path,
// query or fragment smuggled in.
func FuzzParseTargetHost(f *testing.F) {
	for _, s := range append(fuzzAllow(), "t.example:8443", "127.0.0.1", "[::1]", "[2001:DB8::1]:853",
		"a-b.c1.example", "xn--bcher-kva.example", "t.example.", "t..example", "-t.example", "t.example:",
		"t.example:08443", "t.example:65536", "t.example:443:443", "u@t.example", "t.example/x", "127.1",
		"0x7f.0.0.1", "0177.0.0.1", "2130706433", "1.2.3.4.5", "::1", "[::1", "[::1]x", "[fe80::1%lo]",
		"[127.0.0.1]", "[::ffff:127.0.0.1]:443", "bücher.example", "a.b.c.d.1e") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseTargetHost(s)
		if err != nil {
			if tg != nil {
				t.Fatalf("error %v with a target", err)
			}
			return
		}
		if tg.port == 0 || tg.host == "" || strings.ToLower(tg.host) != tg.host {
			t.Fatalf("%q parsed as %+v", s, tg)
		}
		if tg.addr.IsValid() {
			if tg.addr.String() != tg.host || tg.addr.Zone() != "" {
				t.Fatalf("%q: address %v, host %q", s, tg.addr, tg.host)
			}
		} else if err := checkName(tg.host); err != nil {
			t.Fatalf("%q: name %q: %v", s, tg.host, err)
		}
		// key and urlHost agree, and parse back to the same target.
		h, p, err := net.SplitHostPort(tg.key)
		if err != nil || h != tg.host || p != strconv.Itoa(int(tg.port)) {
			t.Fatalf("%q: key %q", s, tg.key)
		}
		if (tg.port == DefaultPort) != (tg.urlHost != tg.key) {
			t.Fatalf("%q: key %q, urlHost %q", s, tg.key, tg.urlHost)
		}
		for _, again := range []string{tg.key, tg.urlHost} {
			t2, err := parseTargetHost(again)
			if err != nil || t2.key != tg.key || t2.urlHost != tg.urlHost || t2.addr != tg.addr {
				t.Fatalf("%q: canonical %q re-parses as %+v, %v", s, again, t2, err)
			}
		}
		if !strings.HasPrefix(s, "[") {
			if l := strings.ToLower(s); l != tg.key && l != tg.urlHost {
				t.Fatalf("%q canonicalised to %q", s, tg.key)
			}
		}
		u, err := url.Parse((&url.URL{Scheme: "https", Host: tg.urlHost, Path: odoh.QueryPath}).String())
		if err != nil || u.Host != tg.urlHost || u.User != nil || u.Path != odoh.QueryPath || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q: URL %#v, %v", s, u, err)
		}
		if u.Hostname() != tg.host || u.Port() != "" && u.Port() != strconv.Itoa(int(tg.port)) {
			t.Fatalf("%q: URL host %q port %q", s, u.Hostname(), u.Port())
		}
	})
}

// FuzzCheckTargetPath: an accepted path is the exact path of the upstream
// URL, however the URL is printed and parsed again, and cannot reach
// another host, query or fragment, or climb out of its directory.
func FuzzCheckTargetPath(f *testing.F) {
	for _, p := range []string{"/dns-query", "/", "/a/b-c_d.e~f", "/.well-known/odohconfigs", "/a+b", "",
		"dns-query", "//x", "/a?b", "/a#b", `/a\b`, "/a%2F", "/a b", "/a\nb", "/a\x7f", "/..", "/a/../b",
		"/./a", "/ä", "/a/.", "/a;b=c", "/@x", "/:x", "/a//b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkTargetPath(p) != nil {
			return
		}
		if len(p) > MaxTargetPathLen || p[0] != '/' || strings.HasPrefix(p, "//") {
			t.Fatalf("accepted %q", p)
		}
		for seg := range strings.SplitSeq(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted dot segment in %q", p)
			}
		}
		for _, host := range []string{"t.example", "t.example:8443", "[2001:db8::1]"} {
			u := &url.URL{Scheme: "https", Host: host, Path: p}
			s := u.String()
			again, err := url.Parse(s)
			if err != nil || again.Host != host || again.Path != p || again.User != nil || again.RawQuery != "" ||
				again.Fragment != "" || again.Opaque != "" {
				t.Fatalf("%q: %s re-parses as %#v, %v", p, s, again, err)
			}
			if r := again.ResolveReference(&url.URL{}); r.Host != host {
				t.Fatalf("%q: resolves to host %q", p, r.Host)
			}
		}
	})
}

// FuzzClientKey: any RemoteAddr gives a rate-limit key without panicking;
// a parseable one gives its address (IPv4-mapped as IPv4, no zone), IPv6
// cut to its /64, and the key is stable under its own formatting.
func FuzzClientKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1234", "[2001:db8:1:2::1]:1", "[::ffff:192.0.2.1]:5",
		"[fe80::1%eth0]:53", "", "bad", "1.2.3.4", "[::1]", "@", "[::]:0", "unix:/x", "1.2.3.4:99999"} {
		f.Add(s)
	}
	l := newLimiter(1e12, 1<<30, limiterShards)
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		k := clientKey(s)
		if !l.allow(k, now) {
			t.Fatalf("%q: refused by a limiter that cannot run dry", s)
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			if k != (netip.Addr{}) {
				t.Fatalf("unparseable %q keyed as %v", s, k)
			}
			return
		}
		if !k.IsValid() || k.Zone() != "" || k.Is4In6() {
			t.Fatalf("%q keyed as %v", s, k)
		}
		a := ap.Addr().Unmap()
		if a.Is4() {
			if k != a {
				t.Fatalf("%q keyed as %v", s, k)
			}
		} else if p := netip.PrefixFrom(a.WithZone(""), 64); !p.Contains(k) || k != p.Masked().Addr() {
			t.Fatalf("%q keyed as %v, not its /64", s, k)
		}
		if k2 := clientKey(netip.AddrPortFrom(k, 1).String()); k2 != k {
			t.Fatalf("%q: key %v re-keys as %v", s, k, k2)
		}
	})
}

// FuzzConfigsResponse: the checking of a target's configs answer. A body
// accepted for relaying is a well-framed ObliviousDoHConfigs list (by the
// test's own reading of the framing), and a body refused is a 502
// http_protocol_error. (The Cache-Control rule is odoh.MaxAge's, fuzzed
// there.)
func FuzzConfigsResponse(f *testing.F) {
	good := fuzzConfigs(f)
	f.Add(good)
	f.Add([]byte("\x00\x08\xff\xff\x00\x04abcd"))
	f.Add([]byte("<script>alert(1)</script>"))
	f.Add(good[:len(good)-1])
	f.Add([]byte("\x00\x00"))
	f.Add(append(good, 0))
	f.Fuzz(func(t *testing.T, body []byte) {
		ue := checkConfigs(body)
		if ue == nil {
			if !fuzzWellFramedConfigs(body) {
				t.Fatalf("relaying the badly framed %x", body)
			}
			return
		}
		if ue.status != http.StatusBadGateway || ue.kind != odoh.ProxyHTTPProtocolError || !errors.Is(ue, odoh.ErrMalformed) {
			t.Fatalf("refused %x with %d %s (%v)", body, ue.status, ue.kind, ue)
		}
	})
}

// fuzzConfigs is a well-formed configs body with one fresh config.
func fuzzConfigs(tb testing.TB) []byte {
	k, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := odoh.MarshalConfigs(k.Config())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/odohd/odoh/internal/leakcheck"
	"github.com/odohd/odoh/internal/rawpeer"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// rawTarget is the allowlisted IP literal the raw fuzzer's requests name.
const rawTarget = "192.0.2.1"

// FuzzTargetRawHTTP answers the proxy's requests to a target with arbitrary
// bytes on a real TLS connection, parsed by the proxy's own HTTP/2 (or
// HTTP/1.1) transport: the HEADERS, DATA and any other frames a target
// could send, or an HTTP/1.1 response. Nothing may panic or leak a
// goroutine; the request that reached the target carries only the proxy's
// own header set and the client's body; every answer to the client is a
// status the proxy may send with a Proxy-Status naming it and a
// Cache-Control, and never a header of the target's own.
//
// When raw is false, the bytes are a well-formed response built from
// status, Content-Type, Cache-Control and body (in DATA frames of chunk
// bytes), and the answer must then be exactly what FuzzServeHTTP expects
// for that response.
func FuzzTargetRawHTTP(f *testing.F) {
	h := fuzzRealHandler(f, false)
	base := h.upstream.(*http.Transport)
	ca := testca.New(f)
	serverTLS := ca.ServerTLS(f, rawTarget)
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: rawTarget, NextProtos: []string{"h2", "http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}

	ct := odoh.ContentType
	good := fuzzConfigs(f)
	for _, h2 := range []bool{true, false} {
		f.Add(h2, false, false, 200, ct, "", []byte("answer"), 0, []byte{})
		f.Add(h2, false, false, 200, ct, "max-age=0", []byte("answer"), 2, []byte{})
		f.Add(h2, false, false, 401, ct, "", []byte{}, 0, []byte{})
		f.Add(h2, false, false, 200, "text/html", "", []byte("<p>"), 0, []byte{})
		f.Add(h2, false, false, 200, ct, "", make([]byte, fuzzMaxResponse+1), 100, []byte{})
		f.Add(h2, false, false, 503, "", "", []byte("busy"), 0, []byte{})
		f.Add(h2, false, false, 600, ct, "", []byte("x"), 0, []byte{})
		f.Add(h2, false, true, 200, "application/octet-stream", "max-age=60", good, 0, []byte{})
		f.Add(h2, false, true, 200, "", "", []byte("\x00\x08\xff\xff\x00\x04abcd"), 1, []byte{})
		f.Add(h2, true, false, 0, "", "", []byte{}, 0, []byte{})
	}
	f.Add(true, true, false, 0, "", "", []byte{}, 0,
		rawpeer.H2Response("200", []string{"content-type", ct, "content-length", "99"}, []byte("short"), 0))
	f.Add(true, true, false, 0, "", "", []byte{}, 0,
		rawpeer.H2Response("103", []string{"link", "</x>"}, nil, 0))
	f.Add(true, true, false, 0, "", "", []byte{}, 0,
		append(rawpeer.H2Response("200", []string{"content-type", ct}, nil, 0)[:9], 0xff, 0xff, 0xff))
	f.Add(true, true, false, 0, "", "", []byte{}, 0,
		[]byte("\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0b")) // GOAWAY
	f.Add(true, true, false, 0, "", "", []byte{}, 0,
		[]byte("\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x07")) // RST_STREAM REFUSED_STREAM
	f.Add(false, true, false, 0, "", "", []byte{}, 0, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"+
		"Content-Type: application/oblivious-dns-message\r\n\r\n5\r\nhello\r\nzz\r\n"))
	f.Add(false, true, false, 0, "", "", []byte{}, 0, []byte("HTTP/1.0 200\r\n\r\n"))

	var once sync.Once
	var baseline leakcheck.Baseline
	f.Fuzz(func(t *testing.T, h2, raw, configs bool, status int, ctype, cc string, body []byte, chunk int, rawBytes []byte) {
		if len(body) > 4*fuzzMaxResponse || len(rawBytes) > 16<<10 {
			t.Skip()
		}
		once.Do(func() { baseline = leakcheck.Take() })
		fields := []string{"set-cookie", "track=1", "location", "https://elsewhere.example/", "alt-svc", `h3=":443"`,
			"x-target-tag", "secret"}
		if ctype != "" {
			fields = append(fields, "content-type", ctype)
		}
		if cc != "" {
			fields = append(fields, "cache-control", cc)
		}
		// The oracle holds for well-formed responses with a final status
		// both protocols carry with a body.
		wellFormed := !raw && status >= 200 && status <= 599 && status != 204 && status != 304 &&
			rawpeer.SafeValue(ctype) && rawpeer.SafeValue(cc)
		proto := "http/1.1"
		if h2 {
			proto = "h2"
		}
		peer := &rawpeer.Peer{
			TLS: &tls.Config{Certificates: serverTLS.Certificates, NextProtos: []string{proto}},
			Respond: func(rawpeer.Request) []byte {
				switch {
				case raw:
					return rawBytes
				case h2:
					return rawpeer.H2Response(strconv.Itoa(status), fields, body, chunk)
				default:
					return rawpeer.H1Response(strconv.Itoa(status), fields, body, len(body))
				}
			},
		}
		rt := base.Clone()
		rt.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, _, err := h.dialer.resolve(ctx, addr); err != nil {
				return nil, err
			}
			c, err := peer.Dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(c, clientTLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		}
		h.upstream = rt
		h.configs.purge()

		var req *http.Request
		if configs {
			req = httptest.NewRequest(http.MethodGet, odoh.ConfigsPath+"?targethost="+rawTarget, nil)
		} else {
			req = httptest.NewRequest(http.MethodPost, odoh.QueryPath+"?targethost="+rawTarget+"&targetpath=%2Fdns-query",
				strings.NewReader("q"))
			req.Header.Set("Content-Type", ct)
		}
		req.RemoteAddr = "198.51.100.7:4242"
		req.Header.Set("Cookie", "client=1")
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		rt.CloseIdleConnections()
		reqs, err := peer.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != 1 {
			t.Fatalf("%d requests reached the target", len(reqs))
		}
		checkRawForwarded(t, reqs[0], configs)
		checkRawAnswer(t, rec)
		if wellFormed {
			resp := fuzzResponse{status: status, ctype: ctype, cc: cc, body: body, knownLength: true}
			if configs {
				fuzzCheckConfigsAnswer(t, rec, http.MethodGet, resp)
			} else {
				fuzzCheckQueryAnswer(t, rec, resp)
			}
		}
		baseline.Check(t, 8)
	})
}

// checkRawForwarded checks what reached the target: the query's POST or
// the configs GET, with exactly the proxy's own fields.
func checkRawForwarded(t *testing.T, r rawpeer.Request, configs bool) {
	t.Helper()
	wantMethod, wantPath := http.MethodPost, odoh.QueryPath
	if configs {
		wantMethod, wantPath = http.MethodGet, odoh.ConfigsPath
	}
	if r.Method != wantMethod || r.Path != wantPath || r.Host != rawTarget {
		t.Fatalf("target got %s %s for %s", r.Method, r.Path, r.Host)
	}
	for k := range r.Header {
		switch k {
		case "Content-Type", "Accept", "User-Agent", "Content-Length":
		default:
			t.Fatalf("target got the field %s: %q", k, r.Header.Get(k))
		}
	}
	if !configs && (string(r.Body) != "q" || r.Header.Get("Content-Type") != odoh.ContentType) {
		t.Fatalf("target got body %q of type %q", r.Body, r.Header.Get("Content-Type"))
	}
}

// checkRawAnswer checks the invariants of every answer to the client.
func checkRawAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	hdr := rec.Result().Header
	fuzzCheckLeaks(t, hdr)
	ps := hdr.Get("Proxy-Status")
	if rec.Code < 200 || rec.Code > 599 {
		t.Fatalf("status %d to the client", rec.Code)
	}
	if rest, ok := strings.CutPrefix(ps, DefaultName+"; received-status="); ok {
		if rest != strconv.Itoa(rec.Code) {
			t.Fatalf("status %d, Proxy-Status %q", rec.Code, ps)
		}
	} else if !strings.HasPrefix(ps, DefaultName+"; error=") || rec.Code != 502 && rec.Code != 504 {
		t.Fatalf("status %d, Proxy-Status %q", rec.Code, ps)
	}
	if hdr.Get("Cache-Control") == "" {
		t.Fatal("no Cache-Control")
	}
	if cl := hdr.Get("Content-Length"); cl != "" && cl != strconv.Itoa(rec.Body.Len()) {
		t.Fatalf("Content-Length %q for %d bytes", cl, rec.Body.Len())
	}
	if rec.Code == http.StatusOK && rec.Body.Len() > max(fuzzMaxResponse, odoh.MaxConfigsSize) {
		t.Fatalf("%d-byte answer relayed", rec.Body.Len())
	}
}

package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/leakcheck"
	"github.com/odohd/odoh/internal/rawpeer"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// FuzzRawHTTPResponse answers the client's query with arbitrary bytes on a
// real TLS connection, parsed by the client's own HTTP/2 (or HTTP/1.1)
// transport. Nothing may panic or leak a goroutine, and the client never
// returns an answer that is not the target's sealed answer to its query.
//
// When raw is false, the bytes are a well-formed response built from
// status, Content-Type and a body that is the target's answer sealed to
// the query (seal set; answer is the DNS answer) or answer itself, in DATA
// frames of chunk bytes; the client must then do exactly what FuzzResponse
// expects: an *HTTPError for a non-200, ErrBadResponse for a wrong type or
// body, and the sealed answer, with the query's ID, for a good one.
func FuzzRawHTTPResponse(f *testing.F) {
	ca := testca.New(f)
	serverTLS := ca.ServerTLS(f, "proxy.example")
	key, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		f.Fatal(err)
	}
	static, err := odoh.MarshalConfigs(key.Config())
	if err != nil {
		f.Fatal(err)
	}
	c, err := New(Config{Proxies: []string{fuzzProxy}, Targets: []string{fuzzTarget}, ConfigSource: ConfigStatic,
		StaticConfigs: static, MaxAttempts: 1, RootCAs: ca.Pool(), Timeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	base := c.hc.Transport.(*http.Transport)
	q := fuzzQuery(f)
	ans := new(dns.Msg).SetReply(new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA))
	ans.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A: net.IPv4(192, 0, 2, 1)}}
	answer, _ := ans.Pack()
	ct := odoh.ContentType
	for _, h2 := range []bool{true, false} {
		f.Add(h2, false, 200, ct, answer, true, 0, []byte{})
		f.Add(h2, false, 200, ct, answer, true, 7, []byte{})
		f.Add(h2, false, 200, ct, answer, false, 0, []byte{})
		f.Add(h2, false, 200, "text/plain", answer, true, 0, []byte{})
		f.Add(h2, false, 401, ct, []byte{}, false, 0, []byte{})
		f.Add(h2, false, 307, "", []byte{}, false, 0, []byte{})
		f.Add(h2, false, 502, "text/plain", []byte("x"), false, 0, []byte{})
		f.Add(h2, true, 0, "", []byte{}, false, 0, []byte{})
	}
	f.Add(true, true, 0, "", []byte{}, false, 0, rawpeer.H2Response("200", []string{"content-type", ct, "content-length", "4"}, []byte("toolong"), 0))
	f.Add(true, true, 0, "", []byte{}, false, 0, rawpeer.H2Response("100", nil, nil, 0))
	f.Add(true, true, 0, "", []byte{}, false, 0, []byte("\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"))
	f.Add(false, true, 0, "", []byte{}, false, 0, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/oblivious-dns-message\r\nContent-Length: 99999999\r\n\r\nab"))
	f.Add(false, true, 0, "", []byte{}, false, 0, []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/oblivious-dns-message\r\n\r\nffffffff\r\n"))

	var once sync.Once
	var baseline leakcheck.Baseline
	f.Fuzz(func(t *testing.T, h2, raw bool, status int, ctype string, body []byte, seal bool, chunk int, rawBytes []byte) {
		if len(body) > 4096 || len(rawBytes) > 16<<10 {
			t.Skip()
		}
		once.Do(func() { baseline = leakcheck.Take() })
		proto := "http/1.1"
		if h2 {
			proto = "h2"
		}
		sealed := false
		peer := &rawpeer.Peer{
			TLS: &tls.Config{Certificates: serverTLS.Certificates, NextProtos: []string{proto}},
			Respond: func(r rawpeer.Request) []byte {
				if raw {
					return rawBytes
				}
				b := body
				if seal {
					if m, err := odoh.ParseMessage(r.Body); err == nil {
						if oq, err := key.OpenQuery(m); err == nil {
							if s, err := oq.SealResponse(body); err == nil {
								b, sealed = s, true
							}
						}
					}
				}
				var fields []string
				if ctype != "" {
					fields = []string{"content-type", ctype}
				}
				if h2 {
					return rawpeer.H2Response(strconv.Itoa(status), fields, b, chunk)
				}
				return rawpeer.H1Response(strconv.Itoa(status), fields, b, len(b))
			},
		}
		rt := base.Clone()
		rt.DialContext = peer.Dial
		c.hc.Transport = rt
		res, err := c.Do(context.Background(), q)
		rt.CloseIdleConnections()
		reqs, perr := peer.Wait()
		if perr != nil {
			t.Fatal(perr)
		}
		if len(reqs) != 1 {
			t.Fatalf("%d requests reached the proxy", len(reqs))
		}
		r := reqs[0]
		if r.Method != http.MethodPost || r.Path != "/dns-query?targethost=target.example&targetpath=%2Fdns-query" ||
			r.Header.Get("Content-Type") != ct || r.Header.Get("Accept") != ct || r.Header.Get("User-Agent") != "" ||
			r.Header.Get("Cookie") != "" {
			t.Fatalf("proxy got %s %s %v", r.Method, r.Path, r.Header)
		}
		if err == nil {
			// Only the target's answer to this query can open: the sealed
			// one, with the query's ID restored.
			if !sealed || res.DNS[0] != q[0] || res.DNS[1] != q[1] || !bytes.Equal(res.DNS[2:], body[2:]) {
				t.Fatalf("answer %x accepted; target sealed %v %x", res.DNS, sealed, body)
			}
		}
		wellFormed := !raw && status >= 200 && status <= 599 && status != 204 && status != 304 && rawpeer.SafeValue(ctype)
		if wellFormed {
			var he *HTTPError
			switch {
			case status != http.StatusOK:
				if !errors.As(err, &he) || he.StatusCode != status || strings.Contains(he.URL, "?") {
					t.Fatalf("status %d: error %v", status, err)
				}
			case !odoh.HasContentType([]string{ctype}, odoh.ContentType) || !sealed || len(body) < 2:
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("bad response accepted or mistyped: %v", err)
				}
			default:
				if err != nil {
					t.Fatalf("a good answer refused: %v", err)
				}
			}
		}
		baseline.Check(t, 8)
	})
}

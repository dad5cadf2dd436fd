package target_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
	"github.com/odohd/odoh/target"
)

// maxFuzzZone bounds the zone text of one exec, to keep execs cheap.
const maxFuzzZone = 4096

// FuzzParseZone: ParseZone never panics, and a zone it accepts answers
// queries for its own names (and names below them) without panicking, with
// an answer that packs.
func FuzzParseZone(f *testing.F) {
	f.Add(testZone)
	f.Add("$ORIGIN example.\n@ 60 IN SOA ns hostmaster 1 2 3 4 5\n* 60 IN TXT \"w\"\na 60 IN CNAME b\nb 60 IN CNAME a\n")
	f.Add(". 60 IN SOA a. b. 1 2 3 4 5\n*. 60 IN A 192.0.2.1\nx.y. 60 IN MX 10 x.y.\n")
	f.Add("$ORIGIN z.\n@ IN SOA ns h 1 2 3 4 5\nsub IN NS ns.sub\nns.sub IN A 192.0.2.1\nc IN CNAME out.of.zone.\n")
	f.Add("a. 60 IN SOA a. b. 1 2 3 4 5\nb. 60 IN A 192.0.2.1\n") // outside every zone
	f.Add("garbage (((")
	f.Fuzz(fuzzZone)
}

func fuzzZone(t *testing.T, text string) {
	{
		// $GENERATE expands one line into up to 65,536 records: skip it,
		// it is the DNS library's code and would make execs slow.
		if len(text) > maxFuzzZone || strings.Contains(strings.ToLower(text), "$generate") {
			t.Skip()
		}
		z, err := target.ParseZone(strings.NewReader(text), "fuzz.test.", "fuzz")
		if err != nil {
			return
		}
		// The owner names, as the DNS library reads them.
		var names []string
		zp := dns.NewZoneParser(strings.NewReader(text), "fuzz.test.", "fuzz")
		for rr, ok := zp.Next(); ok && len(names) < 4; rr, ok = zp.Next() {
			names = append(names, rr.Header().Name)
		}
		for _, name := range names {
			for _, qname := range []string{name, "x." + name, strings.ToUpper(name)} {
				if _, ok := dns.IsDomainName(qname); !ok || len(qname) > 255 {
					continue
				}
				for _, qtype := range []uint16{dns.TypeA, dns.TypeCNAME, dns.TypeANY} {
					q := new(dns.Msg).SetQuestion(qname, qtype)
					q.Id = 0x1234
					r, ok := z.Answer(q)
					if !ok {
						if qname == name {
							t.Fatalf("%s %s: no answer for an owner name of the zone", qname, dns.TypeToString[qtype])
						}
						continue
					}
					if r.Id != q.Id || !r.Response || len(r.Question) != 1 {
						t.Fatalf("%s: answer header %+v", qname, r.MsgHdr)
					}
					if _, err := r.Pack(); err != nil {
						t.Fatalf("%s %s: answer does not pack: %v", qname, dns.TypeToString[qtype], err)
					}
				}
			}
		}
	}
}

// fuzzMaxBody is the handler's body limit in FuzzHandler: small, so that
// 413 is within the fuzzer's reach.
const fuzzMaxBody = 512

// FuzzHandler posts arbitrary bodies to the ODoH endpoint. The handler must
// never panic and must answer exactly what the odoh package says the body
// is: 413 over the limit, 400 for a malformed or undecryptable message or an
// unparsable DNS query, 401 for an unknown key, and 200 only for a valid
// query to a held key.
//
// When seal is set, the input is instead the DNS query, sealed to the
// target's key before it is posted: the fuzzer cannot forge ciphertexts, so
// this is how it reaches the DNS parsing and answering behind decryption.
// Those answers must decrypt and carry the query's ID.
func FuzzHandler(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	keys, err := target.NewKeyring(target.KeyringConfig{
		Seed: bytes.Repeat([]byte{0xf0}, odoh.SeedSize), Period: time.Hour,
		Now: func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	chain := newChain(f, target.ChainConfig{Zone: mustZone(f)}) // no upstream: never a socket
	h := newHandler(f, target.Config{Keys: keys, Resolver: chain, MaxBodySize: fuzzMaxBody,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	key, err := keys.Current()
	if err != nil {
		f.Fatal(err)
	}
	cfg := key.Config()
	good, goodCtx, err := odoh.SealQuery(cfg, query(f, "www.zone.test.", dns.TypeA, 0x77))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, false)
	f.Add(good[:len(good)-1], false)
	f.Add([]byte{}, false)
	f.Add(make([]byte, fuzzMaxBody+1), false)
	f.Add(query(f, "www.zone.test.", dns.TypeA, 1), true)
	f.Add(query(f, "nope.zone.test.", dns.TypeTXT, 2), true)
	f.Add(query(f, "alias.zone.test.", dns.TypeANY, 3), true)
	f.Add(query(f, "example.net.", dns.TypeA, 4), true) // SERVFAIL: no upstream
	f.Add([]byte{1, 2, 3}, true)

	f.Fuzz(func(t *testing.T, in []byte, seal bool) {
		body, qctx := in, (*odoh.QueryContext)(nil)
		if seal {
			var err error
			if body, qctx, err = odoh.SealQuery(cfg, in); err != nil {
				t.Skip() // too large to seal
			}
		}
		req := httptest.NewRequest(http.MethodPost, odoh.QueryPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", odoh.ContentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		want := expectedStatus(keys, body)
		if rec.Code != want {
			t.Fatalf("status %d, want %d", rec.Code, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != odoh.ContentType {
			t.Fatalf("Content-Type %q", ct)
		}
		if rec.Code != http.StatusOK {
			if rec.Body.Len() != 0 {
				t.Fatalf("status %d with a %d-byte body", rec.Code, rec.Body.Len())
			}
			return
		}
		m, err := odoh.ParseMessage(rec.Body.Bytes())
		if err != nil || m.Type != odoh.MessageTypeResponse {
			t.Fatalf("200 with a body that is no ODoH response: %v", err)
		}
		if bytes.Equal(body, good) {
			qctx, in = goodCtx, query(t, "www.zone.test.", dns.TypeA, 0x77)
		}
		if qctx == nil {
			return
		}
		plain, err := qctx.OpenResponse(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("opening the answer: %v", err)
		}
		a := new(dns.Msg)
		if err := a.Unpack(plain); err != nil {
			t.Fatalf("unpacking the answer: %v", err)
		}
		if id := uint16(in[0])<<8 | uint16(in[1]); a.Id != id || !a.Response {
			t.Fatalf("answer ID %#x response %v, want ID %#x", a.Id, a.Response, id)
		}
	})
}

// expectedStatus is the status the handler owes body, worked out with the
// odoh package alone.
func expectedStatus(keys *target.Keyring, body []byte) int {
	if len(body) > fuzzMaxBody {
		return http.StatusRequestEntityTooLarge
	}
	m, err := odoh.ParseMessage(body)
	if err != nil || m.Type != odoh.MessageTypeQuery {
		return http.StatusBadRequest
	}
	key := keys.Lookup(m.KeyID)
	if key == nil {
		return http.StatusUnauthorized
	}
	q, err := key.OpenQuery(m)
	if errors.Is(err, odoh.ErrKeyMismatch) {
		return http.StatusUnauthorized
	}
	if err != nil || new(dns.Msg).Unpack(q.DNS) != nil {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// FuzzGateway drives the OHTTP gateway behind decapsulation: the input is
// the Binary HTTP request, encapsulated to the gateway's key before it is
// posted (the fuzzer cannot forge encapsulations). Invariants: no panic;
// every such request gets a 200 message/ohttp-res that opens to a Binary
// HTTP response padded to the block size; a 200 inside carries a DNS
// answer to the query, any other inner status no content.
func FuzzGateway(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	keys, err := target.NewKeyring(target.KeyringConfig{
		Seed: bytes.Repeat([]byte{0xf1}, odoh.SeedSize), Period: time.Hour,
		Now: func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	chain := newChain(f, target.ChainConfig{Zone: mustZone(f)}) // no upstream: never a socket
	h := newHandler(f, target.Config{Keys: keys, Resolver: chain, MaxBodySize: fuzzMaxBody,
		OHTTP:  target.OHTTPConfig{Authorities: []string{gatewayAuthority}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	body, _, err := keys.OHTTPConfigs()
	if err != nil {
		f.Fatal(err)
	}
	cfgs, err := ohttp.ParseKeyConfigs(body)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []*bhttp.Request{
		firefoxQuery(f, gatewayAuthority, "www.zone.test."),
		{Method: "GET", Scheme: "https", Authority: gatewayAuthority,
			Path: odoh.QueryPath + "?dns=" + base64.RawURLEncoding.EncodeToString(query(f, "alias.zone.test.", dns.TypeA, 9))},
		{Method: "POST", Scheme: "https", Authority: "other.example", Path: "/x"},
	} {
		for _, e := range []bhttp.Encoding{{}, {Indeterminate: true, Padding: 7}} {
			b, err := r.Append(nil, e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 4, 'P', 'O', 'S', 'T'})
	f.Fuzz(func(t *testing.T, in []byte) {
		encReq, cc, err := ohttp.EncapsulateRequest(cfgs[0], in)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, target.OHTTPGatewayPath, bytes.NewReader(encReq))
		req.Header.Set("Content-Type", ohttp.RequestContentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if len(encReq) > fuzzMaxBody {
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("a %d-byte request: status %d", len(encReq), rec.Code)
			}
			return
		}
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ohttp.ResponseContentType {
			t.Fatalf("status %d, Content-Type %q: every decapsulated request gets an encapsulated answer", rec.Code, rec.Header().Get("Content-Type"))
		}
		plain, err := cc.DecapsulateResponse(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("opening the answer: %v", err)
		}
		if len(plain)%odoh.ResponseBlockSize != 0 {
			t.Fatalf("inner response is %d bytes, not padded", len(plain))
		}
		res, err := bhttp.ParseResponse(plain)
		if err != nil {
			t.Fatalf("inner response: %v", err)
		}
		if res.Status != http.StatusOK {
			if len(res.Content) != 0 {
				t.Fatalf("inner status %d with content", res.Status)
			}
			return
		}
		a := new(dns.Msg)
		if err := a.Unpack(res.Content); err != nil || !a.Response {
			t.Fatalf("inner 200 without a DNS answer: %v", err)
		}
	})
}

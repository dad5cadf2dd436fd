package target_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/internal/metrics/metricstest"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
	"github.com/odohd/odoh/target"
)

const gatewayAuthority = "dns.example"

// ohttpConfig configures a handler with the gateway and without plain DoH.
func ohttpConfig(t testing.TB, keys *target.Keyring) target.Config {
	t.Helper()
	c := zoneConfig(t, nil)
	c.DoH = false // the gateway answers DoH inside OHTTP even when plain DoH is off
	if keys != nil {
		c.Keys = keys
	}
	c.OHTTP = target.OHTTPConfig{Authorities: []string{gatewayAuthority}}
	return c
}

func ohttpHandler(t testing.TB, keys *target.Keyring) *target.Handler {
	t.Helper()
	return newHandler(t, ohttpConfig(t, keys))
}

// firefoxQuery is a DoH query as Firefox puts it inside OHTTP (TRR.cpp,
// ObliviousHttpChannel.cpp): POST to the DoH URL's authority and path with
// the headers its channel was given, names as given, DNS ID 0.
func firefoxQuery(t testing.TB, authority, name string) *bhttp.Request {
	return &bhttp.Request{
		Method: "POST", Scheme: "https", Authority: authority, Path: odoh.QueryPath,
		Header: bhttp.Fields{
			{Name: "Accept", Value: "application/dns-message"},
			{Name: "Cache-Control", Value: "no-store"},
			{Name: "Accept-Language", Value: ""},
			{Name: "User-Agent", Value: ""},
			{Name: "Content-Type", Value: "application/dns-message"},
		},
		Content: query(t, name, dns.TypeA, 0),
	}
}

func fetchOHTTPConfig(t testing.TB, c *http.Client, url string) (*ohttp.KeyConfig, *http.Response, []byte) {
	t.Helper()
	resp, body := do(t, c, mustRequest(t, http.MethodGet, url))
	if resp.StatusCode != http.StatusOK || !odoh.HasContentType(resp.Header["Content-Type"], ohttp.KeysContentType) {
		t.Fatalf("keys: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cfgs, err := ohttp.ParseKeyConfigs(body)
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	return cfgs[0], resp, body
}

// gatewayExchange encapsulates inner to cfg, posts it to the gateway and
// returns the outer response, its body and, for a 200, the decapsulated
// plaintext and the inner response.
func gatewayExchange(t testing.TB, c *http.Client, base string, cfg *ohttp.KeyConfig, inner []byte) (*http.Response, []byte, []byte, *bhttp.Response) {
	t.Helper()
	encReq, cc, err := ohttp.EncapsulateRequest(cfg, inner)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, c, base+target.OHTTPGatewayPath, ohttp.RequestContentType, encReq)
	if resp.StatusCode != http.StatusOK {
		return resp, body, nil, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != ohttp.ResponseContentType {
		t.Fatalf("outer Content-Type %q", ct)
	}
	plain, err := cc.DecapsulateResponse(body)
	if err != nil {
		t.Fatalf("decapsulating: %v", err)
	}
	res, err := bhttp.ParseResponse(plain)
	if err != nil {
		t.Fatalf("inner response: %v", err)
	}
	return resp, body, plain, res
}

func encode(t testing.TB, r *bhttp.Request) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOHTTPGateway(t *testing.T) {
	reg := prometheus.NewRegistry()
	hc := ohttpConfig(t, nil)
	tm, err := metrics.NewTarget(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc.Metrics = tm
	s := serve(t, newHandler(t, hc))
	for name, c := range s.clients() {
		t.Run(name, func(t *testing.T) {
			cfg, resp, body := fetchOHTTPConfig(t, c, s.url+target.OHTTPGatewayPath)
			if cc := resp.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "max-age=") || cc == "max-age=0" {
				t.Errorf("keys Cache-Control %q", cc)
			}
			_, _, body2 := fetchOHTTPConfig(t, c, s.url+target.OHTTPKeysPath)
			if !bytes.Equal(body, body2) {
				t.Error("the two key paths serve different configurations")
			}
			if cur, _ := hc.Keys.Current(); bytes.Equal(cfg.PublicKey(), cur.Config().PublicKey()) {
				t.Error("OHTTP and ODoH share a key")
			}
			if want := uint8(hc.Keys.Epoch()); cfg.KeyID() != want {
				t.Errorf("key ID %d, want the epoch mod 256, %d", cfg.KeyID(), want)
			}

			for _, authority := range []string{gatewayAuthority, "DNS.example:443"} {
				resp, _, plain, res := gatewayExchange(t, c, s.url, cfg, encode(t, firefoxQuery(t, authority, "www.zone.test.")))
				if resp.StatusCode != http.StatusOK || res.Status != http.StatusOK {
					t.Fatalf("%s: statuses %d / %+v", authority, resp.StatusCode, res)
				}
				if got := resp.Header.Get("Cache-Control"); got != "private, no-store" {
					t.Errorf("outer Cache-Control %q", got)
				}
				if len(plain)%odoh.ResponseBlockSize != 0 {
					t.Errorf("inner response is %d bytes, not padded to %d", len(plain), odoh.ResponseBlockSize)
				}
				if res.Header.Get("content-type") != "application/dns-message" || res.Header.Get("cache-control") != "max-age=300" {
					t.Errorf("inner header %v", res.Header)
				}
				m := new(dns.Msg)
				if err := m.Unpack(res.Content); err != nil {
					t.Fatal(err)
				}
				if m.Id != 0 || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
					t.Fatalf("answer %v", m)
				}
			}

			// The indeterminate-length framing (RFC 9292 §3.2), padded,
			// is answered the same.
			indet, err := firefoxQuery(t, gatewayAuthority, "www.zone.test.").Append(nil, bhttp.Encoding{Indeterminate: true, Padding: 9})
			if err != nil || indet[0] != 2 {
				t.Fatalf("indeterminate-length request %x, %v", indet, err)
			}
			if _, _, _, res := gatewayExchange(t, c, s.url, cfg, indet); res == nil || res.Status != http.StatusOK || len(res.Content) == 0 {
				t.Fatalf("indeterminate-length request: %+v", res)
			}

			// GET ?dns= works too (RFC 8484 §4.1).
			get := &bhttp.Request{Method: "GET", Scheme: "https", Authority: gatewayAuthority,
				Path:   odoh.QueryPath + "?dns=" + base64.RawURLEncoding.EncodeToString(query(t, "alias.zone.test.", dns.TypeA, 77)),
				Header: bhttp.Fields{{Name: "accept", Value: "application/dns-message"}}}
			_, _, _, res := gatewayExchange(t, c, s.url, cfg, encode(t, get))
			m := new(dns.Msg)
			if res == nil || res.Status != http.StatusOK || m.Unpack(res.Content) != nil || m.Id != 77 || len(m.Answer) != 2 {
				t.Fatalf("GET: %+v", res)
			}
		})
	}
	if got := metricstest.Must(t, reg, "odoh_target_requests_total", map[string]string{"protocol": "ohttp", "transport": "h3", "result": "ok"}); got != 4 {
		t.Errorf("ohttp h3 ok counter %v, want 4", got)
	}
}

func TestOHTTPInnerErrors(t *testing.T) {
	s := serve(t, ohttpHandler(t, nil))
	cfg, _, _ := fetchOHTTPConfig(t, s.h2, s.url+target.OHTTPKeysPath)
	with := func(f func(r *bhttp.Request)) []byte {
		r := firefoxQuery(t, gatewayAuthority, "www.zone.test.")
		f(r)
		return encode(t, r)
	}
	testCases := []struct {
		name   string
		inner  []byte
		status int
	}{
		{"another authority", with(func(r *bhttp.Request) { r.Authority = "evil.example" }), http.StatusMisdirectedRequest},
		{"no authority", with(func(r *bhttp.Request) { r.Authority = "" }), http.StatusMisdirectedRequest},
		{"http scheme", with(func(r *bhttp.Request) { r.Scheme = "http" }), http.StatusMisdirectedRequest},
		{"another port", with(func(r *bhttp.Request) { r.Authority = gatewayAuthority + ":8443" }), http.StatusMisdirectedRequest},
		{"another path", with(func(r *bhttp.Request) { r.Path = "/admin" }), http.StatusNotFound},
		{"configs path", with(func(r *bhttp.Request) { r.Path = odoh.ConfigsPath }), http.StatusNotFound},
		{"PUT", with(func(r *bhttp.Request) { r.Method = "PUT" }), http.StatusMethodNotAllowed},
		{"text/plain", with(func(r *bhttp.Request) { r.Header[4].Value = "text/plain" }), http.StatusUnsupportedMediaType},
		{"two content types", with(func(r *bhttp.Request) {
			r.Header = append(r.Header, bhttp.Field{Name: "content-type", Value: "application/dns-message"})
		}), http.StatusUnsupportedMediaType},
		{"100-continue", with(func(r *bhttp.Request) {
			r.Header = append(r.Header, bhttp.Field{Name: "Expect", Value: "100-continue"})
		}), http.StatusExpectationFailed},
		{"not DNS", with(func(r *bhttp.Request) { r.Content = []byte("hello") }), http.StatusBadRequest},
		{"GET without dns", with(func(r *bhttp.Request) { r.Method = "GET"; r.Content = nil }), http.StatusBadRequest},
		{"not Binary HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), http.StatusBadRequest},
		{"a response", []byte{1, 0x40, 200}, http.StatusBadRequest},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, _, plain, res := gatewayExchange(t, s.h2, s.url, cfg, tc.inner)
			if resp.StatusCode != http.StatusOK || res == nil {
				t.Fatalf("outer status %d: errors after decapsulation must be encapsulated (RFC 9458 §5.2)", resp.StatusCode)
			}
			if res.Status != tc.status || len(res.Content) != 0 {
				t.Fatalf("inner %+v, want status %d and no content", res, tc.status)
			}
			if len(plain)%odoh.ResponseBlockSize != 0 {
				t.Errorf("error response is %d bytes, not padded", len(plain))
			}
			if tc.status == http.StatusMethodNotAllowed && res.Header.Get("allow") != "GET, POST" {
				t.Errorf("405 without Allow: %v", res.Header)
			}
		})
	}
}

func TestOHTTPOuterErrors(t *testing.T) {
	c := ohttpConfig(t, nil)
	c.MaxBodySize = 1000
	s := serve(t, newHandler(t, c))
	cfg, _, _ := fetchOHTTPConfig(t, s.h2, s.url+target.OHTTPGatewayPath)
	good, _, err := ohttp.EncapsulateRequest(cfg, encode(t, firefoxQuery(t, gatewayAuthority, "www.zone.test.")))
	if err != nil {
		t.Fatal(err)
	}
	otherID := bytes.Clone(good)
	otherID[0]++
	otherAEAD := bytes.Clone(good)
	binary.BigEndian.PutUint16(otherAEAD[5:], uint16(odoh.AEADAES256GCM))
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	testCases := []struct {
		name    string
		method  string
		ct      string
		body    []byte
		status  int
		problem bool
	}{
		{"unknown key ID", http.MethodPost, ohttp.RequestContentType, otherID, http.StatusBadRequest, true},
		{"symmetric pair not offered", http.MethodPost, ohttp.RequestContentType, otherAEAD, http.StatusBadRequest, true},
		{"undecryptable", http.MethodPost, ohttp.RequestContentType, flipped, http.StatusBadRequest, false},
		{"short", http.MethodPost, ohttp.RequestContentType, good[:5], http.StatusBadRequest, false},
		{"ODoH media type", http.MethodPost, odoh.ContentType, good, http.StatusUnsupportedMediaType, false},
		{"no media type", http.MethodPost, "", good, http.StatusUnsupportedMediaType, false},
		{"too large", http.MethodPost, ohttp.RequestContentType, make([]byte, 1001), http.StatusRequestEntityTooLarge, false},
		{"PUT", http.MethodPut, ohttp.RequestContentType, good, http.StatusMethodNotAllowed, false},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.url+target.OHTTPGatewayPath, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, body := do(t, s.h2, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.problem != (resp.Header.Get("Content-Type") == ohttp.ProblemContentType) ||
				tc.problem != bytes.Equal(body, ohttp.KeyProblem()) {
				t.Fatalf("problem %v: Content-Type %q, body %q", tc.problem, resp.Header.Get("Content-Type"), body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	resp, _ := do(t, s.h2, mustRequest(t, http.MethodPost, s.url+target.OHTTPKeysPath))
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST to the keys path: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// Without authorities, there is no gateway.
	off := serve(t, zoneHandler(t, nil))
	for _, p := range []string{target.OHTTPGatewayPath, target.OHTTPKeysPath} {
		if resp, _ := do(t, off.h2, mustRequest(t, http.MethodGet, off.url+p)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s on a target without OHTTP: %d", p, resp.StatusCode)
		}
	}
	if resp, _ := post(t, off.h2, off.url+target.OHTTPGatewayPath, ohttp.RequestContentType, good); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST to a target without OHTTP: %d", resp.StatusCode)
	}
}

// The OHTTP keys rotate with the ODoH keys: the previous, current and next
// epochs' keys are accepted, older ones get the key problem, and replicas
// sharing the seed share the keys.
func TestOHTTPKeyRotation(t *testing.T) {
	clock := &fakeClock{}
	start := time.Unix(1_800_000_000, 0).Truncate(time.Hour)
	clock.Set(start.Add(10 * time.Minute))
	seed := bytes.Repeat([]byte{3}, odoh.SeedSize)
	s := serve(t, ohttpHandler(t, newKeyring(t, seed, clock.Now)))
	ask := func(cfg *ohttp.KeyConfig) int {
		t.Helper()
		resp, body, _, res := gatewayExchange(t, s.h2, s.url, cfg, encode(t, firefoxQuery(t, gatewayAuthority, "www.zone.test.")))
		if resp.StatusCode == http.StatusOK && res.Status != http.StatusOK {
			t.Fatalf("inner status %d", res.Status)
		}
		if resp.StatusCode != http.StatusOK && !bytes.Equal(body, ohttp.KeyProblem()) {
			t.Fatalf("status %d with body %q", resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	old, _, _ := fetchOHTTPConfig(t, s.h2, s.url+target.OHTTPKeysPath)

	// A replica a little ahead, already in the next epoch, publishes the
	// next key: this one accepts it.
	ahead := &fakeClock{}
	ahead.Set(start.Add(time.Hour + time.Minute))
	body, _, err := newKeyring(t, seed, ahead.Now).OHTTPConfigs()
	if err != nil {
		t.Fatal(err)
	}
	nexts, err := ohttp.ParseKeyConfigs(body)
	if err != nil {
		t.Fatal(err)
	}
	next := nexts[0]
	if next.KeyID() != old.KeyID()+1 || next.Equal(old) {
		t.Fatalf("next key %v after %v", next, old)
	}
	if ask(old) != http.StatusOK || ask(next) != http.StatusOK {
		t.Fatal("current or next key refused")
	}
	clock.Advance(time.Hour)
	cur, _, _ := fetchOHTTPConfig(t, s.h2, s.url+target.OHTTPKeysPath)
	if !cur.Equal(next) {
		t.Fatalf("after rotation the target publishes %v, its replica %v", cur, next)
	}
	if ask(old) != http.StatusOK {
		t.Fatal("previous key refused")
	}
	clock.Advance(time.Hour)
	if got := ask(old); got != http.StatusBadRequest {
		t.Fatalf("a key two epochs old: status %d, want the key problem", got)
	}
}

// The gateway keeps no anti-replay state (see OHTTPConfig): a replayed
// Encapsulated Request is answered again, each time under a fresh response
// nonce, so the replayer gets a different ciphertext of the same padded
// size and nothing it can open.
func TestOHTTPReplayAnsweredUnderFreshNonce(t *testing.T) {
	s := serve(t, ohttpHandler(t, nil))
	cfg, _, _ := fetchOHTTPConfig(t, s.h2, s.url+target.OHTTPKeysPath)
	encReq, cc, err := ohttp.EncapsulateRequest(cfg, encode(t, firefoxQuery(t, gatewayAuthority, "www.zone.test.")))
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for range 2 {
		resp, body := post(t, s.h2, s.url+target.OHTTPGatewayPath, ohttp.RequestContentType, encReq)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		plain, err := cc.DecapsulateResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := bhttp.ParseResponse(plain); err != nil || res.Status != http.StatusOK {
			t.Fatalf("inner %+v, %v", res, err)
		}
		bodies = append(bodies, body)
	}
	nonce := odoh.AEADAES128GCM.ResponseNonceSize()
	if len(bodies[0]) != len(bodies[1]) || bytes.Equal(bodies[0][:nonce], bodies[1][:nonce]) || bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("the replay's answer reuses the nonce or differs in size:\n%x\n%x", bodies[0], bodies[1])
	}
}

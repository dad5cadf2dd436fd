package ohttp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/odohd/odoh/odoh"
)

func allSymmetric() []Symmetric {
	var out []Symmetric
	for _, k := range []odoh.KDF{odoh.KDFHKDFSHA256, odoh.KDFHKDFSHA384, odoh.KDFHKDFSHA512} {
		for _, a := range []odoh.AEAD{odoh.AEADAES128GCM, odoh.AEADAES256GCM, odoh.AEADChaCha20Poly1305} {
			out = append(out, Symmetric{KDF: k, AEAD: a})
		}
	}
	return out
}

func TestRoundTripEverySuite(t *testing.T) {
	for _, kem := range []odoh.KEM{odoh.KEMX25519, odoh.KEMP256} {
		for _, sym := range allSymmetric() {
			t.Run(kem.String()+"/"+sym.String(), func(t *testing.T) {
				k, err := DeriveKey(7, kem, bytes.Repeat([]byte{1}, SeedSize), sym)
				if err != nil {
					t.Fatal(err)
				}
				list, _ := MarshalKeyConfigs(k.Config())
				cfgs, err := ParseKeyConfigs(list)
				if err != nil || len(cfgs) != 1 || !cfgs[0].Equal(k.Config()) {
					t.Fatalf("configs %v, %v", cfgs, err)
				}
				encReq, cc, err := EncapsulateRequest(cfgs[0], []byte("request"))
				if err != nil {
					t.Fatal(err)
				}
				if want := headerSize + kem.EncSize() + len("request") + 16; len(encReq) != want {
					t.Fatalf("encapsulated request is %d bytes, want %d", len(encReq), want)
				}
				req, g, err := k.DecapsulateRequest(encReq)
				if err != nil || string(req) != "request" {
					t.Fatalf("gateway read %q, %v", req, err)
				}
				encRes, err := g.EncapsulateResponse([]byte("response"))
				if err != nil {
					t.Fatal(err)
				}
				if want := sym.AEAD.ResponseNonceSize() + len("response") + 16; len(encRes) != want {
					t.Fatalf("encapsulated response is %d bytes, want %d", len(encRes), want)
				}
				res, err := cc.DecapsulateResponse(encRes)
				if err != nil || string(res) != "response" {
					t.Fatalf("client read %q, %v", res, err)
				}
				// Tampering with any byte of either message is detected.
				for i := range encReq {
					bad := bytes.Clone(encReq)
					bad[i] ^= 0x80
					if _, _, err := k.DecapsulateRequest(bad); err == nil {
						t.Fatalf("request with byte %d flipped decapsulated", i)
					}
				}
				for i := range encRes {
					bad := bytes.Clone(encRes)
					bad[i] ^= 0x80
					if _, err := cc.DecapsulateResponse(bad); !errors.Is(err, odoh.ErrDecrypt) {
						t.Fatalf("response with byte %d flipped: %v", i, err)
					}
				}
			})
		}
	}
}

func TestDeriveKeyIsDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{9}, SeedSize)
	a, _ := DeriveKey(1, odoh.KEMX25519, seed)
	b, _ := DeriveKey(1, odoh.KEMX25519, seed)
	c, _ := DeriveKey(1, odoh.KEMX25519, bytes.Repeat([]byte{8}, SeedSize))
	if !a.Config().Equal(b.Config()) || a.Config().Equal(c.Config()) {
		t.Fatal("derived keys do not follow their seeds")
	}
	if got := a.Config().Symmetric(); len(got) != 2 || got[0] != DefaultSymmetric()[0] {
		t.Fatalf("default symmetric algorithms %v", got)
	}
	if _, err := DeriveKey(1, odoh.KEMX25519, seed[:31]); !errors.Is(err, odoh.ErrUnsupported) {
		t.Fatalf("short seed: %v", err)
	}
	if _, err := DeriveKey(1, 0x0021, seed); !errors.Is(err, odoh.ErrUnsupported) {
		t.Fatalf("X448: %v", err)
	}
	if _, err := GenerateKey(1, odoh.KEMX25519, Symmetric{KDF: odoh.KDFHKDFSHA256, AEAD: 0xffff}); !errors.Is(err, odoh.ErrUnsupported) {
		t.Fatalf("export-only AEAD offered: %v", err)
	}
}

func TestDecapsulateRequestRefuses(t *testing.T) {
	k := appendixAKey(t)
	good := h(t, appendixA.encRequest)
	with := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	testCases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, odoh.ErrMalformed},
		{"header only", good[:headerSize], odoh.ErrMalformed},
		{"no room for the tag", good[:headerSize+32+15], odoh.ErrMalformed},
		{"unknown key ID", with(func(b []byte) { b[0] = 2 }), odoh.ErrKeyMismatch},
		{"other KEM", with(func(b []byte) { binary.BigEndian.PutUint16(b[1:], uint16(odoh.KEMP256)) }), odoh.ErrKeyMismatch},
		{"pair not offered", with(func(b []byte) { binary.BigEndian.PutUint16(b[5:], uint16(odoh.AEADAES256GCM)) }), odoh.ErrKeyMismatch},
		{"pair offered, other than the one sealed with", with(func(b []byte) { binary.BigEndian.PutUint16(b[5:], uint16(odoh.AEADChaCha20Poly1305)) }), odoh.ErrDecrypt},
		{"ciphertext altered", with(func(b []byte) { b[len(b)-1] ^= 1 }), odoh.ErrDecrypt},
		{"trailing byte", append(bytes.Clone(good), 0), odoh.ErrDecrypt},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			req, g, err := k.DecapsulateRequest(tc.in)
			if !errors.Is(err, tc.want) || req != nil || g != nil {
				t.Fatalf("got %x, %v, %v; want %v", req, g, err, tc.want)
			}
		})
	}
	c := &ClientContext{suite: odoh.Suite{KEM: odoh.KEMX25519, KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADAES128GCM}, enc: make([]byte, 32), secret: make([]byte, 16)}
	if _, err := c.DecapsulateResponse(make([]byte, 31)); !errors.Is(err, odoh.ErrMalformed) {
		t.Fatalf("short response: %v", err)
	}
}

func TestParseKeyConfigs(t *testing.T) {
	good := h(t, appendixA.keyConfig)
	entry := func(c []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(c))), c...) }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	x448 := join([]byte{5, 0, 0x21}, make([]byte, 56), []byte{0, 4, 0, 1, 0, 1})
	exportOnly := join(good[:35], []byte{0, 4, 0, 1, 0xff, 0xff})
	other, _ := GenerateKey(9, odoh.KEMP256)
	p256, _ := other.Config().MarshalBinary()

	cfgs, err := ParseKeyConfigs(join(entry(x448), entry(good), entry(exportOnly), entry(p256)))
	if err != nil || len(cfgs) != 2 || cfgs[0].KeyID() != 1 || cfgs[1].KeyID() != 9 {
		t.Fatalf("mixed list: %v, %v", cfgs, err)
	}
	if _, err := ParseKeyConfigs(join(entry(x448), entry(exportOnly))); !errors.Is(err, odoh.ErrUnsupported) {
		t.Fatalf("no usable configuration: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"lone length byte", []byte{0}},
		{"length past the end", join([]byte{0, 60}, good)},
		{"trailing byte after an entry", join(entry(good), []byte{0})},
		{"zero-length entry", join(entry(good), []byte{0, 0})},
		{"config with a trailing byte", entry(join(good, []byte{0}))},
		{"config cut in its algorithms", entry(good[:len(good)-2])},
		{"algorithms length not a multiple of 4", entry(join(good[:35], []byte{0, 6, 0, 1, 0, 1, 0, 1}))},
		{"algorithms length zero", entry(join(good[:35], []byte{0, 0}))},
		{"P-256 point off the curve", entry(join([]byte{3, 0, 0x10, 4}, make([]byte, 64), []byte{0, 4, 0, 1, 0, 1}))},
		{"good then bad", join(entry(good), entry(good[:10]))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgs, err := ParseKeyConfigs(tc.in)
			if !errors.Is(err, odoh.ErrMalformed) || cfgs != nil {
				t.Fatalf("got %v, %v; want odoh.ErrMalformed", cfgs, err)
			}
		})
	}
	if _, err := ParseKeyConfig(x448); !errors.Is(err, odoh.ErrUnsupported) {
		t.Fatalf("single X448 configuration: %v", err)
	}
	if _, err := MarshalKeyConfigs(); !errors.Is(err, odoh.ErrMalformed) {
		t.Fatalf("empty list marshalled: %v", err)
	}
}

func TestKeyProblem(t *testing.T) {
	// RFC 9458 Figure 7, without its white space.
	want := `{"type":"https://iana.org/assignments/http-problem-types#ohttp-key","title":"key identifier unknown"}`
	if string(KeyProblem()) != want {
		t.Fatalf("problem %s", KeyProblem())
	}
	pj := []string{ProblemContentType}
	for _, tc := range []struct {
		status int
		ct     []string
		body   string
		want   bool
	}{
		{400, pj, want, true},
		{400, []string{"Application/Problem+JSON; charset=utf-8"}, `{"title":"x","type":"` + KeyProblemType + `"}`, true},
		{422, pj, want, false},
		{400, []string{"application/json"}, want, false},
		{400, []string{ProblemContentType, ProblemContentType}, want, false},
		{400, pj, `{"type":"https://iana.org/assignments/http-problem-types#date"}`, false},
		{400, pj, `not json ` + KeyProblemType, false},
	} {
		if got := IsKeyProblem(tc.status, tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("IsKeyProblem(%d, %q, %s) = %v", tc.status, tc.ct, tc.body, got)
		}
	}
}

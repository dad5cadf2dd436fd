package odoh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/odohd/odoh/internal/hpke"
)

// allSuites lists every supported suite combination.
func allSuites() []Suite {
	var out []Suite
	for _, k := range []KEM{KEMX25519, KEMP256} {
		for _, f := range []KDF{KDFHKDFSHA256, KDFHKDFSHA384, KDFHKDFSHA512} {
			for _, a := range []AEAD{AEADAES128GCM, AEADAES256GCM, AEADChaCha20Poly1305} {
				out = append(out, Suite{KEM: k, KDF: f, AEAD: a})
			}
		}
	}
	return out
}

func mustKey(t testing.TB, s Suite) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripAllSuites(t *testing.T) {
	query := bytes.Repeat([]byte{0xab}, 33)
	answer := bytes.Repeat([]byte{0xcd}, 300)
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			key := mustKey(t, s)
			// The client sees the config only through its wire form.
			wire, err := MarshalConfigs(key.Config())
			if err != nil {
				t.Fatal(err)
			}
			cfgs, err := ParseConfigs(wire)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(cfgs[0].KeyID()), s.KDF.HashSize(); got != want {
				t.Fatalf("key_id is %d bytes, want Nh=%d", got, want)
			}
			msg, qc, err := SealQuery(cfgs[0], query)
			if err != nil {
				t.Fatal(err)
			}
			// Default padding: Q_plain is a multiple of 128 bytes.
			overhead := 5 + s.KDF.HashSize() + s.KEM.EncSize() + s.AEAD.TagSize()
			if plain := len(msg) - overhead; plain%QueryBlockSize != 0 {
				t.Fatalf("query plaintext is %d bytes, not a multiple of %d", plain, QueryBlockSize)
			}
			m, err := ParseMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			q, err := key.OpenQuery(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(q.DNS, query) {
				t.Fatalf("target read %x", q.DNS)
			}
			resp, err := q.SealResponse(answer)
			if err != nil {
				t.Fatal(err)
			}
			rm, err := ParseMessage(resp)
			if err != nil {
				t.Fatal(err)
			}
			if len(rm.KeyID) != s.AEAD.ResponseNonceSize() {
				t.Fatalf("resp_nonce is %d bytes, want %d", len(rm.KeyID), s.AEAD.ResponseNonceSize())
			}
			if plain := len(rm.Encrypted) - s.AEAD.TagSize(); plain%ResponseBlockSize != 0 {
				t.Fatalf("response plaintext is %d bytes, not a multiple of %d", plain, ResponseBlockSize)
			}
			got, err := qc.OpenResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, answer) {
				t.Fatalf("client read %x", got)
			}
		})
	}
}

// B5: every response gets a fresh resp_nonce.
func TestResponseNonceFresh(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	msg, _, err := SealQuery(key.Config(), []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseMessage(msg)
	q, err := key.OpenQuery(m)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 64 {
		r, err := q.SealResponse([]byte{4, 5, 6})
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := ParseMessage(r)
		if seen[string(rm.KeyID)] {
			t.Fatalf("resp_nonce %x repeated", rm.KeyID)
		}
		seen[string(rm.KeyID)] = true
	}
}

func TestDeriveKeyDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, SeedSize)
	for _, s := range []Suite{DefaultSuite(), {KEM: KEMP256, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}} {
		a, err := DeriveKey(s, seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DeriveKey(s, bytes.Clone(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !a.Config().Equal(b.Config()) {
			t.Fatalf("%v: same seed, different keys", s)
		}
		// A query sealed to one replica opens at the other.
		msg, _, err := SealQuery(a.Config(), []byte{9})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := ParseMessage(msg)
		if _, err := b.OpenQuery(m); err != nil {
			t.Fatalf("%v: replica could not open: %v", s, err)
		}
	}
}

func TestDeriveKeyBadSeed(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		_, err := DeriveKey(DefaultSuite(), make([]byte, n))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%d-byte seed: err = %v, want ErrUnsupported", n, err)
		}
	}
	if _, err := DeriveKey(Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: hpke.AEADExportOnly}, make([]byte, 32)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("export-only suite: err = %v", err)
	}
}

// config builds ObliviousDoHConfig bytes from raw fields.
func config(version uint16, kem KEM, kdf KDF, aead AEAD, pub []byte) []byte {
	var c []byte
	c = binary.BigEndian.AppendUint16(c, uint16(kem))
	c = binary.BigEndian.AppendUint16(c, uint16(kdf))
	c = binary.BigEndian.AppendUint16(c, uint16(aead))
	c = appendLP16(c, pub)
	return appendLP16(binary.BigEndian.AppendUint16(nil, version), c)
}

func list(entries ...[]byte) []byte {
	return appendLP16(nil, bytes.Join(entries, nil))
}

func TestParseConfigs(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	good := config(Version, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, key.Config().PublicKey())
	p256 := mustKey(t, Suite{KEM: KEMP256, KDF: KDFHKDFSHA384, AEAD: AEADChaCha20Poly1305})
	goodP256 := config(Version, KEMP256, KDFHKDFSHA384, AEADChaCha20Poly1305, p256.Config().PublicKey())
	pk := key.Config().PublicKey()

	testCases := []struct {
		name  string
		in    []byte
		want  int // configs expected; 0 with err
		err   error
		first *Config
	}{
		{name: "one", in: list(good), want: 1, first: key.Config()},
		{name: "preference order kept", in: list(goodP256, good), want: 2, first: p256.Config()},
		{name: "A4 unknown version skipped", in: list(config(0xff03, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, pk), good), want: 1, first: key.Config()},
		{name: "B9 P-384 skipped", in: list(config(Version, 0x0011, KDFHKDFSHA384, AEADAES128GCM, make([]byte, 97)), good), want: 1, first: key.Config()},
		{name: "B9 export-only skipped", in: list(config(Version, KEMX25519, KDFHKDFSHA256, hpke.AEADExportOnly, pk), good), want: 1, first: key.Config()},
		{name: "only unsupported", in: list(config(Version, KEMX25519, KDFHKDFSHA256, hpke.AEADExportOnly, pk)), err: ErrUnsupported},
		{name: "only unknown versions", in: list(config(0xff06, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, pk)), err: ErrUnsupported},
		{name: "A3 empty input", in: nil, err: ErrMalformed},
		{name: "A3 one byte", in: []byte{0}, err: ErrMalformed},
		{name: "A3 zero-length list", in: []byte{0, 0}, err: ErrMalformed},
		{name: "A3 outer length short", in: append([]byte{0, byte(len(good) - 1)}, good...), err: ErrMalformed},
		{name: "A3 outer length long", in: append([]byte{0, byte(len(good) + 1)}, good...), err: ErrMalformed},
		{name: "A3 trailing after list", in: append(list(good), 0), err: ErrMalformed},
		{name: "truncated version", in: list(good, []byte{0}), err: ErrMalformed},
		{name: "config length overruns", in: list([]byte{0, 1, 0, 50, 0, 0}), err: ErrMalformed},
		{name: "contents shorter than suite", in: list(appendLP16([]byte{0, 1}, []byte{0, 0x20, 0, 1})), err: ErrMalformed},
		{name: "public key length overruns contents", in: list(appendLP16([]byte{0, 1}, []byte{0, 0x20, 0, 1, 0, 1, 0, 40, 1})), err: ErrMalformed},
		{name: "trailing bytes in contents", in: list(appendLP16([]byte{0, 1}, append(config(Version, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, pk)[4:], 0))), err: ErrMalformed},
		{name: "empty public key", in: list(config(Version, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, nil)), err: ErrMalformed},
		{name: "X25519 key too short", in: list(config(Version, KEMX25519, KDFHKDFSHA256, AEADAES128GCM, pk[:31])), err: ErrMalformed},
		{name: "P-256 key not on curve", in: list(config(Version, KEMP256, KDFHKDFSHA256, AEADAES128GCM, append([]byte{4}, bytes.Repeat([]byte{1}, 64)...))), err: ErrMalformed},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			cfgs, err := ParseConfigs(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if cfgs != nil {
					t.Fatalf("configs returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfgs) != tc.want {
				t.Fatalf("%d configs, want %d", len(cfgs), tc.want)
			}
			if !cfgs[0].Equal(tc.first) || !bytes.Equal(cfgs[0].KeyID(), tc.first.KeyID()) {
				t.Fatalf("first config %v, want %v", cfgs[0], tc.first)
			}
		})
	}
}

// A1, A2: the serialized form of a config.
func TestConfigEncoding(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	b, err := key.Config().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0, 1, 0, 40, 0, 0x20, 0, 1, 0, 1, 0, 32}, key.Config().PublicKey()...)
	if !bytes.Equal(b, want) {
		t.Fatalf("config %x, want %x", b, want)
	}
	if !bytes.Equal(key.Config().contents, want[4:]) {
		t.Fatalf("contents %x", key.Config().contents)
	}
	if _, err := MarshalConfigs(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty list: %v", err)
	}
}

func TestNewConfigRejects(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	if _, err := NewConfig(Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: hpke.AEADExportOnly}, key.Config().PublicKey()); !errors.Is(err, ErrUnsupported) {
		t.Errorf("export-only: %v", err)
	}
	if _, err := NewConfig(DefaultSuite(), key.Config().PublicKey()[:5]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short key: %v", err)
	}
}

func TestParseMessage(t *testing.T) {
	testCases := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"query", []byte{1, 0, 1, 0xaa, 0, 1, 0xbb}, true},
		{"response", []byte{2, 0, 0, 0, 1, 0xbb}, true},
		{"A7 empty", nil, false},
		{"A7 unknown type 0", []byte{0, 0, 0, 0, 1, 0xbb}, false},
		{"A7 unknown type 3", []byte{3, 0, 0, 0, 1, 0xbb}, false},
		{"A7 trailing bytes", []byte{1, 0, 0, 0, 1, 0xbb, 0}, false},
		{"A7 empty encrypted_message", []byte{1, 0, 0, 0, 0}, false},
		{"A7 key_id length 0xffff", []byte{1, 0xff, 0xff, 0, 1}, false},
		{"encrypted length overruns", []byte{1, 0, 0, 0, 5, 1}, false},
		{"type only", []byte{1}, false},
		{"half a length", []byte{1, 0}, false},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.MarshalBinary()
			if err != nil || !bytes.Equal(out, tc.in) {
				t.Fatalf("re-marshalled %x, %v", out, err)
			}
		})
	}
}

func TestParsePlaintext(t *testing.T) {
	testCases := []struct {
		name string
		in   []byte
		msg  []byte
	}{
		{"no padding", []byte{0, 1, 0xaa, 0, 0}, []byte{0xaa}},
		{"zero padding", []byte{0, 1, 0xaa, 0, 3, 0, 0, 0}, []byte{0xaa}},
		{"A5 shorter than 4 bytes", []byte{0, 1, 0xaa}, nil},
		{"A5 empty", nil, nil},
		{"A5 dns_message length 0", []byte{0, 0, 0, 0}, nil},
		{"A5 message length overruns", []byte{0, 9, 0xaa, 0, 0}, nil},
		{"A5 padding length overruns", []byte{0, 1, 0xaa, 0, 4, 0, 0}, nil},
		{"A5 trailing bytes", []byte{0, 1, 0xaa, 0, 0, 0}, nil},
		{"E5 non-zero padding", []byte{0, 1, 0xaa, 0, 3, 0, 1, 0}, nil},
		{"E5 last padding byte set", []byte{0, 1, 0xaa, 0, 3, 0, 0, 0x80}, nil},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := parsePlaintext(tc.in)
			if tc.msg == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil || !bytes.Equal(msg, tc.msg) {
				t.Fatalf("got %x, %v", msg, err)
			}
		})
	}
}

func TestBlockPadding(t *testing.T) {
	testCases := []struct{ msgLen, block, limit, want int }{
		{1, 128, 65487, 123},   // 5 → 128
		{124, 128, 65487, 0},   // already 128
		{125, 128, 65487, 127}, // 129 → 256
		{60, 468, 65519, 404},
		{464, 468, 65519, 0},
		{65000, 468, 65519, 48},  // 65004 → 65052
		{65300, 468, 65519, 215}, // 65304 → capped at the limit, not 65520
		{65515, 468, 65519, 0},
		{65531, 128, 65487, 0}, // already over the limit: no padding (sealing fails later)
	}
	for _, tc := range testCases {
		if got := blockPadding(tc.msgLen, tc.block, tc.limit); got != tc.want {
			t.Errorf("blockPadding(%d, %d, %d) = %d, want %d", tc.msgLen, tc.block, tc.limit, got, tc.want)
		}
	}
}

func TestSizeLimits(t *testing.T) {
	s := DefaultSuite()
	key := mustKey(t, s)
	maxQ := maxQueryPlaintext(s) - 4
	if maxQ != 65483 {
		t.Fatalf("max query dns message %d, want 65483 (65487-byte Q_plain)", maxQ)
	}
	msg, qc, err := SealQuery(key.Config(), make([]byte, maxQ))
	if err != nil {
		t.Fatalf("largest query: %v", err)
	}
	if len(msg) != 5+32+maxLen16 {
		t.Fatalf("largest query is %d bytes", len(msg))
	}
	if _, _, err := SealQuery(key.Config(), make([]byte, maxQ+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize query: %v", err)
	}
	if _, _, err := SealQuery(key.Config(), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty query: %v", err)
	}
	if _, _, err := SealQueryPadded(key.Config(), []byte{1}, -1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative padding: %v", err)
	}
	m, _ := ParseMessage(msg)
	q, err := key.OpenQuery(m)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, maxResponsePlaintext(s)-4)
	resp, err := q.SealResponse(big)
	if err != nil {
		t.Fatalf("largest response: %v", err)
	}
	if got, err := qc.OpenResponse(resp); err != nil || len(got) != len(big) {
		t.Fatalf("largest response opened to %d bytes, %v", len(got), err)
	}
	if _, err := q.SealResponse(append(big, 0)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize response: %v", err)
	}
}

// sealRawQuery seals an arbitrary plaintext with an arbitrary type byte and
// key ID, for negative tests the public API cannot produce.
func sealRawQuery(t *testing.T, c *Config, typ byte, keyID, aad, plain []byte) []byte {
	t.Helper()
	enc, ct, _, err := sealQuery(c.suite, c.pk, aad, plain)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{typ}, appendLP16(nil, keyID)...)
	return appendLP16(out, append(enc, ct...))
}

func TestOpenQueryRejects(t *testing.T) {
	s := DefaultSuite()
	key := mustKey(t, s)
	other := mustKey(t, s)
	c := key.Config()
	aad := append([]byte{1}, appendLP16(nil, c.KeyID())...)
	good, _, err := SealQuery(c, []byte{0xaa})
	if err != nil {
		t.Fatal(err)
	}
	toOther, _, _ := SealQuery(other.Config(), []byte{0xaa})

	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	zeroKeyID := make([]byte, len(c.KeyID()))

	testCases := []struct {
		name string
		msg  []byte
		err  error
	}{
		{"E3 unknown key_id", toOther, ErrKeyMismatch},
		{"E3 empty key_id", sealRawQuery(t, c, 1, nil, aad, []byte{0, 1, 0xaa, 0, 0}), ErrKeyMismatch},
		{"B2 zeroed key_id in AAD", sealRawQuery(t, c, 1, c.KeyID(), append([]byte{1}, appendLP16(nil, zeroKeyID)...), []byte{0, 1, 0xaa, 0, 0}), ErrDecrypt},
		{"B2 wrong type byte in AAD", sealRawQuery(t, c, 1, c.KeyID(), append([]byte{2}, appendLP16(nil, c.KeyID())...), []byte{0, 1, 0xaa, 0, 0}), ErrDecrypt},
		{"E2 response type", append([]byte{2}, good[1:]...), ErrMalformed},
		{"ciphertext bit flipped", flip(good, len(good)-1), ErrDecrypt},
		{"enc bit flipped", flip(good, 5+32+3), ErrDecrypt},
		{"B3 encrypted_message shorter than Nenc+Nt", append(append([]byte{1}, appendLP16(nil, c.KeyID())...), appendLP16(nil, make([]byte, 47))...), ErrMalformed},
		{"B3 encrypted_message of one byte", append(append([]byte{1}, appendLP16(nil, c.KeyID())...), 0, 1, 9), ErrMalformed},
		{"E5 non-zero padding", sealRawQuery(t, c, 1, c.KeyID(), aad, []byte{0, 1, 0xaa, 0, 2, 0, 7}), ErrMalformed},
		{"A5 empty dns message", sealRawQuery(t, c, 1, c.KeyID(), aad, []byte{0, 0, 0, 0}), ErrMalformed},
		{"A5 trailing plaintext", sealRawQuery(t, c, 1, c.KeyID(), aad, []byte{0, 1, 0xaa, 0, 0, 0}), ErrMalformed},
		{"A5 short plaintext", sealRawQuery(t, c, 1, c.KeyID(), aad, []byte{0, 1}), ErrMalformed},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(tc.msg)
			if err == nil {
				_, err = key.OpenQuery(m)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// sealRawResponse seals an arbitrary response plaintext, type and nonce.
func sealRawResponse(t *testing.T, q *Query, typ byte, nonce, plain []byte) []byte {
	t.Helper()
	a, n, err := responseAEAD(q.suite, q.secret, q.plain, nonce)
	if err != nil {
		t.Fatal(err)
	}
	hdr := append([]byte{typ}, appendLP16(nil, nonce)...)
	aad := append([]byte{2}, appendLP16(nil, nonce)...)
	return appendLP16(hdr, a.Seal(nil, n, plain, aad))
}

func TestOpenResponseRejects(t *testing.T) {
	s := DefaultSuite()
	key := mustKey(t, s)
	msg, qc, err := SealQuery(key.Config(), []byte{0xaa})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := ParseMessage(msg)
	q, err := key.OpenQuery(m)
	if err != nil {
		t.Fatal(err)
	}
	good, err := q.SealResponse([]byte{0xbb})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qc.OpenResponse(good); err != nil {
		t.Fatalf("good response: %v", err)
	}
	nonce := bytes.Repeat([]byte{3}, 16)
	// The same secret with a different query plaintext: B6 says Q_plain
	// (padding included) salts the response keys.
	other := &Query{suite: q.suite, secret: q.secret, plain: append(bytes.Clone(q.plain), 0)}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }

	testCases := []struct {
		name string
		resp []byte
		err  error
	}{
		{"C10 non-zero padding", sealRawResponse(t, q, 2, nonce, []byte{0, 1, 0xbb, 0, 3, 1, 2, 3}), ErrMalformed},
		{"C11 query type", sealRawResponse(t, q, 1, nonce, []byte{0, 1, 0xbb, 0, 0}), ErrMalformed},
		{"A9 short resp_nonce", sealRawResponse(t, q, 2, nonce[:12], []byte{0, 1, 0xbb, 0, 0}), ErrMalformed},
		{"A9 long resp_nonce", sealRawResponse(t, q, 2, append(nonce, 1), []byte{0, 1, 0xbb, 0, 0}), ErrMalformed},
		{"B6 keyed by another Q_plain", sealRawResponse(t, other, 2, nonce, []byte{0, 1, 0xbb, 0, 0}), ErrDecrypt},
		{"tampered ciphertext", flip(good, len(good)-3), ErrDecrypt},
		{"tampered nonce", flip(good, 4), ErrDecrypt},
		{"A7 trailing bytes", append(bytes.Clone(good), 0), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"empty dns message", sealRawResponse(t, q, 2, nonce, []byte{0, 0, 0, 0}), ErrMalformed},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := qc.OpenResponse(tc.resp); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// B4: the response secret is Nk bytes; Nh would not decrypt the vectors'
// peers. Checked here by deriving with the wrong length.
func TestResponseSecretIsNk(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	msg, qc, _ := SealQuery(key.Config(), []byte{1})
	if len(qc.secret) != 16 {
		t.Fatalf("secret is %d bytes, want Nk=16", len(qc.secret))
	}
	m, _ := ParseMessage(msg)
	q, _ := key.OpenQuery(m)
	wrong := &Query{suite: q.suite, secret: append(bytes.Clone(q.secret), make([]byte, 16)...), plain: q.plain}
	resp, err := wrong.SealResponse([]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qc.OpenResponse(resp); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Nh-length secret accepted: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	_, err := ParseMessage([]byte{1, 0, 0, 0, 1, 0xbb, 0, 0})
	if got, want := fmt.Sprint(err), "odoh: malformed: message has 2 trailing bytes"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
}

func TestPaddingHelpers(t *testing.T) {
	key := mustKey(t, DefaultSuite())
	c := key.Config()
	for _, tc := range []struct{ msgLen, block, want int }{
		{40, 128, 84}, {40, 0, 0}, {40, -1, 0}, {124, 128, 0}, {65483, 128, 0}, {65400, 128, 4}, {65480, 128, 3},
	} {
		if got := c.QueryPadding(tc.msgLen, tc.block); got != tc.want {
			t.Errorf("QueryPadding(%d, %d) = %d, want %d", tc.msgLen, tc.block, got, tc.want)
		}
	}
	msg, _, _ := SealQuery(c, []byte{1})
	m, _ := ParseMessage(msg)
	q, err := key.OpenQuery(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ msgLen, block, want int }{
		{100, 468, 364}, {100, 0, 0}, {65300, 468, 215},
	} {
		if got := q.ResponsePadding(tc.msgLen, tc.block); got != tc.want {
			t.Errorf("ResponsePadding(%d, %d) = %d, want %d", tc.msgLen, tc.block, got, tc.want)
		}
	}
}

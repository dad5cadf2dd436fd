package hpke

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/cloudflare/circl/hpke"
)

func supportedSuites() []Suite {
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

// The sizes declared here must be circl's, and the backend must refuse what
// circl would panic on before calling it.
func TestBackendSizes(t *testing.T) {
	for _, s := range supportedSuites() {
		if !s.Supported() {
			t.Fatalf("%v not supported", s)
		}
		if !hpke.KEM(s.KEM).IsValid() || !hpke.KDF(s.KDF).IsValid() || !hpke.AEAD(s.AEAD).IsValid() {
			t.Fatalf("%v supported here but not by circl", s)
		}
		if got := hpke.KEM(s.KEM).Scheme().CiphertextSize(); got != s.KEM.EncSize() {
			t.Fatalf("%v: Nenc %d, circl says %d", s, s.KEM.EncSize(), got)
		}
		if got := hpke.KEM(s.KEM).Scheme().PublicKeySize(); got != s.KEM.PublicKeySize() {
			t.Fatalf("%v: Npk %d, circl says %d", s, s.KEM.PublicKeySize(), got)
		}
		if got := hpke.KEM(s.KEM).Scheme().SeedSize(); got != s.KEM.SeedSize() {
			t.Fatalf("%v: seed %d, circl says %d", s, s.KEM.SeedSize(), got)
		}
		if got := int(hpke.AEAD(s.AEAD).KeySize()); got != s.AEAD.KeySize() {
			t.Fatalf("%v: Nk %d, circl says %d", s, s.AEAD.KeySize(), got)
		}
		if got := int(hpke.AEAD(s.AEAD).NonceSize()); got != s.AEAD.NonceSize() {
			t.Fatalf("%v: Nn %d, circl says %d", s, s.AEAD.NonceSize(), got)
		}
		if got := hpke.KDF(s.KDF).ExtractSize(); got != s.KDF.HashSize() {
			t.Fatalf("%v: Nh %d, circl says %d", s, s.KDF.HashSize(), got)
		}
	}
}

func TestUnsupportedRefused(t *testing.T) {
	for _, s := range []Suite{
		{KEM: 0x0030, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}, // a KEM circl has, not offered here
		{KEM: KEMX25519, KDF: 0x0004, AEAD: AEADAES128GCM},
		{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADExportOnly},
		{},
	} {
		if s.Supported() {
			t.Fatalf("%v claims support", s)
		}
	}
	if _, _, err := DeriveKeyPair(0x0030, make([]byte, 64)); err == nil {
		t.Fatal("derived a key of an unsupported KEM")
	}
	if _, _, err := DeriveKeyPair(KEMX25519, make([]byte, 31)); err == nil {
		t.Fatal("derived a key from a short seed")
	}
	if _, err := ParsePublicKey(KEMX25519, make([]byte, 33)); err == nil {
		t.Fatal("parsed a 33-byte X25519 key")
	}
	if _, err := ParsePublicKey(KEMP256, make([]byte, 65)); err == nil {
		t.Fatal("parsed a P-256 point that is not on the curve")
	}
	if _, err := NewAEAD(AEADExportOnly, make([]byte, 16)); err == nil {
		t.Fatal("made an export-only AEAD")
	}
	sk, _, err := GenerateKeyPair(KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}
	if _, err := NewReceiver(s, sk, make([]byte, 31), nil); err == nil {
		t.Fatal("receiver accepted a short encapsulated key")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range supportedSuites() {
		t.Run(s.String(), func(t *testing.T) {
			sk, pub, err := DeriveKeyPair(s.KEM, bytes.Repeat([]byte{7}, s.KEM.SeedSize()))
			if err != nil {
				t.Fatal(err)
			}
			pk, err := ParsePublicKey(s.KEM, pub)
			if err != nil {
				t.Fatal(err)
			}
			enc, snd, err := NewSender(s, pk, []byte("info"))
			if err != nil {
				t.Fatal(err)
			}
			ct, err := snd.Seal([]byte("hello"), []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			rcv, err := NewReceiver(s, sk, enc, []byte("info"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := rcv.Open(ct, []byte("aad"))
			if err != nil || string(pt) != "hello" {
				t.Fatalf("open: %q, %v", pt, err)
			}
			if !bytes.Equal(snd.Export([]byte("x"), 20), rcv.Export([]byte("x"), 20)) {
				t.Fatal("exported secrets differ")
			}
			if _, err := rcv.Open(ct, []byte("other")); err == nil {
				t.Fatal("opened with the wrong aad")
			}
			wrong, err := NewReceiver(s, sk, enc, []byte("other info"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := wrong.Open(ct, []byte("aad")); err == nil {
				t.Fatal("opened with the wrong info")
			}
		})
	}
}

// RFC 9180 A.1.1 (DHKEM(X25519), HKDF-SHA256, AES-128-GCM), base mode:
// DeriveKeyPair of ikmR gives pkR, skR parses to the same key, and the
// receiver decrypts the first sequence number's ciphertext and exports the
// first exporter value.
func TestRFC9180Vector(t *testing.T) {
	h := func(s string) []byte { return mustHex(t, s) }
	s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}
	_, pub, err := DeriveKeyPair(s.KEM, h("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037"))
	if err != nil {
		t.Fatal(err)
	}
	if want := h("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"); !bytes.Equal(pub, want) {
		t.Fatalf("pkR = %x, want %x", pub, want)
	}
	sk2, pub2, err := ParsePrivateKey(s.KEM, h("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"))
	if err != nil || !bytes.Equal(pub2, pub) {
		t.Fatalf("skR parses to public key %x (%v), want %x", pub2, err, pub)
	}
	rcv, err := NewReceiver(s, sk2, h("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"), h("4f6465206f6e2061204772656369616e2055726e"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rcv.Open(h("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"), h("436f756e742d30"))
	if err != nil {
		t.Fatal(err)
	}
	if want := h("4265617574792069732074727574682c20747275746820626561757479"); !bytes.Equal(pt, want) {
		t.Fatalf("pt = %x", pt)
	}
	if got, want := rcv.Export(nil, 32), h("3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee"); !bytes.Equal(got, want) {
		t.Fatalf("export = %x, want %x", got, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

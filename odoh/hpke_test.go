package odoh

// Tests of the circl backend live beside hpke.go: the only other place
// that imports circl.

import (
	"testing"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// bareTarget performs, with circl alone, exactly the operations a target
// needs per query: SetupBaseR + Open + Export, the response HKDF
// (Extract + two Expands) and one AEAD seal.
type bareTarget struct {
	suite    hpke.Suite
	sk       kem.PrivateKey
	enc, ct  []byte
	aad      []byte
	qPlain   []byte
	respSalt []byte
}

func newBareTarget(b *testing.B) *bareTarget {
	suite := hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)
	pk, sk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().GenerateKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	snd, _ := suite.NewSender(pk, []byte("odoh query"))
	enc, sealer, err := snd.Setup(nil)
	if err != nil {
		b.Fatal(err)
	}
	aad := make([]byte, 35)
	qPlain := make([]byte, 128)
	ct, _ := sealer.Seal(qPlain, aad)
	return &bareTarget{suite: suite, sk: sk, enc: enc, ct: ct, aad: aad, qPlain: qPlain,
		respSalt: append(append([]byte{}, qPlain...), make([]byte, 18)...)}
}

func (t *bareTarget) run(b *testing.B) {
	rcv, _ := t.suite.NewReceiver(t.sk, []byte("odoh query"))
	op, err := rcv.Setup(t.enc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := op.Open(t.ct, t.aad); err != nil {
		b.Fatal(err)
	}
	secret := op.Export([]byte("odoh response"), 16)
	prk := hpke.KDF_HKDF_SHA256.Extract(secret, t.respSalt)
	key := hpke.KDF_HKDF_SHA256.Expand(prk, []byte("odoh key"), 16)
	nonce := hpke.KDF_HKDF_SHA256.Expand(prk, []byte("odoh nonce"), 12)
	a, _ := hpke.AEAD_AES128GCM.New(key)
	a.Seal(nil, nonce, make([]byte, 2*ResponseBlockSize), []byte{2, 0, 16})
}

// The backend must refuse what circl would panic on, before calling it.
func TestBackendGuards(t *testing.T) {
	if s := (Suite{KEM: 0x0030, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}); s.Supported() {
		t.Fatalf("%v claims support for a KEM ODoH has no profile for", s)
	}
	for _, s := range allSuites() {
		if !hpke.KEM(s.KEM).IsValid() || !hpke.KDF(s.KDF).IsValid() || !hpke.AEAD(s.AEAD).IsValid() {
			t.Fatalf("%v supported here but not by circl", s)
		}
		if got := hpke.KEM(s.KEM).Scheme().CiphertextSize(); got != s.KEM.encSize() {
			t.Fatalf("%v: Nenc %d, circl says %d", s, s.KEM.encSize(), got)
		}
		if got := hpke.KEM(s.KEM).Scheme().SeedSize(); got != s.KEM.seedSize() {
			t.Fatalf("%v: seed %d, circl says %d", s, s.KEM.seedSize(), got)
		}
		if got := int(hpke.AEAD(s.AEAD).KeySize()); got != s.AEAD.keySize() {
			t.Fatalf("%v: Nk %d, circl says %d", s, s.AEAD.keySize(), got)
		}
		if got := hpke.KDF(s.KDF).ExtractSize(); got != s.KDF.hashSize() {
			t.Fatalf("%v: Nh %d, circl says %d", s, s.KDF.hashSize(), got)
		}
	}
}

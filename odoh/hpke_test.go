package odoh

// The benchmark baseline: the same HPKE work done with circl alone, to
// measure what odoh adds on top of its backend (internal/hpke).

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

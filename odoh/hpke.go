package odoh

// This file is the only one that imports circl: swapping the HPKE backend
// (for Go's crypto/hpke, say) touches nothing else.

import (
	"crypto/cipher"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// Labels of RFC 9230 §6.2: the HPKE info of the query context and the
// exporter context of the response secret.
const (
	infoQuery     = "odoh query"
	labelResponse = "odoh response"
)

type publicKey struct{ k kem.PublicKey }

type privateKey struct{ k kem.PrivateKey }

func (s Suite) hpke() hpke.Suite {
	return hpke.NewSuite(hpke.KEM(s.KEM), hpke.KDF(s.KDF), hpke.AEAD(s.AEAD))
}

// deriveKeyPair runs RFC 9180 DeriveKeyPair; the caller has checked the
// suite and len(seed) == seedSize (circl panics otherwise).
func deriveKeyPair(s Suite, seed []byte) (privateKey, []byte, error) {
	pk, sk := hpke.KEM(s.KEM).Scheme().DeriveKeyPair(seed)
	return keyPair(pk, sk)
}

func generateKeyPair(s Suite) (privateKey, []byte, error) {
	pk, sk, err := hpke.KEM(s.KEM).Scheme().GenerateKeyPair()
	if err != nil {
		return privateKey{}, nil, wrap(ErrUnsupported, "generating key pair: %v", err)
	}
	return keyPair(pk, sk)
}

func keyPair(pk kem.PublicKey, sk kem.PrivateKey) (privateKey, []byte, error) {
	// Computes any lazily derived public key now, before the private key is
	// shared between goroutines (circl's X25519 keys do this without a lock).
	sk.Public()
	b, err := pk.MarshalBinary()
	if err != nil {
		return privateKey{}, nil, wrap(ErrUnsupported, "marshalling public key: %v", err)
	}
	return privateKey{sk}, b, nil
}

// parsePublicKey checks the length and that the point is on the curve.
func parsePublicKey(s Suite, b []byte) (publicKey, error) {
	pk, err := hpke.KEM(s.KEM).Scheme().UnmarshalBinaryPublicKey(b)
	if err != nil {
		return publicKey{}, malformed("public key: %v", err)
	}
	return publicKey{pk}, nil
}

// sealQuery sets up an HPKE base-mode sender context, seals plain once and
// exports the response secret.
func sealQuery(s Suite, pk publicKey, aad, plain []byte) (enc, ct, secret []byte, err error) {
	snd, err := s.hpke().NewSender(pk.k, []byte(infoQuery))
	if err != nil {
		return nil, nil, nil, wrap(ErrUnsupported, "hpke sender: %v", err)
	}
	enc, sealer, err := snd.Setup(nil) // nil: crypto/rand
	if err != nil {
		return nil, nil, nil, wrap(ErrEncrypt, "hpke setup: %v", err)
	}
	ct, err = sealer.Seal(plain, aad)
	if err != nil {
		return nil, nil, nil, wrap(ErrEncrypt, "hpke seal: %v", err)
	}
	return enc, ct, sealer.Export([]byte(labelResponse), uint(s.AEAD.keySize())), nil
}

// openQuery is the receiver side of sealQuery.
func openQuery(s Suite, sk privateKey, enc, ct, aad []byte) (plain, secret []byte, err error) {
	rcv, err := s.hpke().NewReceiver(sk.k, []byte(infoQuery))
	if err != nil {
		return nil, nil, wrap(ErrUnsupported, "hpke receiver: %v", err)
	}
	opener, err := rcv.Setup(enc)
	if err != nil {
		return nil, nil, wrap(ErrDecrypt, "hpke setup: %v", err)
	}
	plain, err = opener.Open(ct, aad)
	if err != nil {
		return nil, nil, wrap(ErrDecrypt, "query: %v", err)
	}
	return plain, opener.Export([]byte(labelResponse), uint(s.AEAD.keySize())), nil
}

// extract is raw HKDF-Extract of the suite's KDF (not HPKE's labelled one).
func extract(k KDF, salt, ikm []byte) []byte {
	return hpke.KDF(k).Extract(ikm, salt) // circl's order is (secret, salt)
}

// expand is raw HKDF-Expand; n is at most 255*Nh for every caller here.
func expand(k KDF, prk, info []byte, n int) []byte {
	return hpke.KDF(k).Expand(prk, info, uint(n))
}

func newAEAD(a AEAD, key []byte) (cipher.AEAD, error) {
	c, err := hpke.AEAD(a).New(key)
	if err != nil {
		return nil, wrap(ErrUnsupported, "aead: %v", err)
	}
	return c, nil
}

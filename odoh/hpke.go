package odoh

// ODoH's use of HPKE (RFC 9230 §6.2), over the module's one HPKE backend.

import (
	"crypto/cipher"

	"github.com/odohd/odoh/internal/hpke"
)

// Labels of RFC 9230 §6.2: the HPKE info of the query context and the
// exporter context of the response secret.
const (
	infoQuery     = "odoh query"
	labelResponse = "odoh response"
)

// deriveKeyPair runs RFC 9180 DeriveKeyPair; the caller has checked the
// suite and the seed's length.
func deriveKeyPair(s Suite, seed []byte) (hpke.PrivateKey, []byte, error) {
	sk, pub, err := hpke.DeriveKeyPair(s.KEM, seed)
	if err != nil {
		return hpke.PrivateKey{}, nil, wrap(ErrUnsupported, "deriving key pair: %v", err)
	}
	return sk, pub, nil
}

func generateKeyPair(s Suite) (hpke.PrivateKey, []byte, error) {
	sk, pub, err := hpke.GenerateKeyPair(s.KEM)
	if err != nil {
		return hpke.PrivateKey{}, nil, wrap(ErrUnsupported, "generating key pair: %v", err)
	}
	return sk, pub, nil
}

// parsePublicKey checks the length and that the point is on the curve.
func parsePublicKey(s Suite, b []byte) (hpke.PublicKey, error) {
	pk, err := hpke.ParsePublicKey(s.KEM, b)
	if err != nil {
		return hpke.PublicKey{}, malformed("public key: %v", err)
	}
	return pk, nil
}

// sealQuery sets up an HPKE base-mode sender context, seals plain once and
// exports the response secret.
func sealQuery(s Suite, pk hpke.PublicKey, aad, plain []byte) (enc, ct, secret []byte, err error) {
	enc, snd, err := hpke.NewSender(s, pk, []byte(infoQuery))
	if err != nil {
		return nil, nil, nil, wrap(ErrEncrypt, "%v", err)
	}
	ct, err = snd.Seal(plain, aad)
	if err != nil {
		return nil, nil, nil, wrap(ErrEncrypt, "hpke seal: %v", err)
	}
	return enc, ct, snd.Export([]byte(labelResponse), s.AEAD.KeySize()), nil
}

// openQuery is the receiver side of sealQuery.
func openQuery(s Suite, sk hpke.PrivateKey, enc, ct, aad []byte) (plain, secret []byte, err error) {
	rcv, err := hpke.NewReceiver(s, sk, enc, []byte(infoQuery))
	if err != nil {
		return nil, nil, wrapError(ErrDecrypt, "", err)
	}
	plain, err = rcv.Open(ct, aad)
	if err != nil {
		return nil, nil, wrapError(ErrDecrypt, "query: ", err)
	}
	return plain, rcv.Export([]byte(labelResponse), s.AEAD.KeySize()), nil
}

// wrapError is wrap(kind, "%s%v", prefix, err), out of line so that the
// frames of the callers above stay small.
//
//go:noinline
func wrapError(kind error, prefix string, err error) error { return wrap(kind, "%s%v", prefix, err) }

func newAEAD(a AEAD, key []byte) (cipher.AEAD, error) {
	c, err := hpke.NewAEAD(a, key)
	if err != nil {
		return nil, wrap(ErrUnsupported, "%v", err)
	}
	return c, nil
}

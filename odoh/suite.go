package odoh

import "github.com/odohd/odoh/internal/hpke"

// The HPKE identifiers are those of the module's one HPKE home, shared with
// package ohttp, so that a suite means the same in both protocols.

// KEM is an HPKE key encapsulation mechanism identifier (RFC 9180 §7.1).
// Its String method names it.
type KEM = hpke.KEM

// KDF is an HPKE key derivation function identifier (RFC 9180 §7.2).
type KDF = hpke.KDF

// AEAD is an HPKE AEAD identifier (RFC 9180 §7.3).
type AEAD = hpke.AEAD

// Suite is an HPKE cipher suite: the algorithms of one [Config]. Its
// Supported method reports whether this package implements all three, and
// String names them ("X25519/HKDF-SHA256/AES-128-GCM").
type Suite = hpke.Suite

// The HPKE algorithms this package implements. X25519, HKDF-SHA256 and
// AES-128-GCM are mandatory to implement (RFC 9230 §9).
const (
	KEMP256   = hpke.KEMP256   // DHKEM(P-256, HKDF-SHA256)
	KEMX25519 = hpke.KEMX25519 // DHKEM(X25519, HKDF-SHA256)

	KDFHKDFSHA256 = hpke.KDFHKDFSHA256
	KDFHKDFSHA384 = hpke.KDFHKDFSHA384
	KDFHKDFSHA512 = hpke.KDFHKDFSHA512

	AEADAES128GCM        = hpke.AEADAES128GCM
	AEADAES256GCM        = hpke.AEADAES256GCM
	AEADChaCha20Poly1305 = hpke.AEADChaCha20Poly1305
)

// DefaultSuite returns the mandatory-to-implement suite of RFC 9230 §9:
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
func DefaultSuite() Suite {
	return Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}
}

func checkSuite(s Suite) error {
	if !s.Supported() {
		return wrap(ErrUnsupported, "suite %v", s)
	}
	return nil
}

// maxQueryPlaintext is the largest Q_plain whose encrypted_message
// (enc ‖ ct) still fits a 16-bit length.
func maxQueryPlaintext(s Suite) int {
	return maxLen16 - s.KEM.EncSize() - s.AEAD.TagSize()
}

// maxResponsePlaintext is the largest R_plain whose ciphertext fits.
func maxResponsePlaintext(s Suite) int {
	return maxLen16 - s.AEAD.TagSize()
}

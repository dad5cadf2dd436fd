package ohttp

import "github.com/odohd/odoh/internal/hpke"

// The HPKE identifiers are those of the module's one HPKE home, shared with
// package odoh: a suite means the same in both protocols.

// KEM is an HPKE key encapsulation mechanism identifier (RFC 9180 §7.1).
type KEM = hpke.KEM

// KDF is an HPKE key derivation function identifier (RFC 9180 §7.2).
type KDF = hpke.KDF

// AEAD is an HPKE AEAD identifier (RFC 9180 §7.3).
type AEAD = hpke.AEAD

// Suite is an HPKE cipher suite: the KEM of a key and one of its
// symmetric algorithm pairs.
type Suite = hpke.Suite

// The HPKE algorithms this package implements.
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

// Symmetric is one pair of HPKE symmetric algorithms of a key
// configuration (RFC 9458 §3.1).
type Symmetric struct {
	KDF  KDF
	AEAD AEAD
}

// Supported reports whether this package implements both algorithms.
func (s Symmetric) Supported() bool { return s.KDF.Supported() && s.AEAD.Supported() }

// String names the pair, e.g. "HKDF-SHA256/AES-128-GCM".
func (s Symmetric) String() string { return s.KDF.String() + "/" + s.AEAD.String() }

// DefaultSymmetric returns the pairs a gateway key offers when none are
// given, in order of preference: HKDF-SHA256 with AES-128-GCM (the suite
// of RFC 9458 Appendix A) and with ChaCha20-Poly1305, the pairs Firefox
// implements.
func DefaultSymmetric() []Symmetric {
	return []Symmetric{
		{KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM},
		{KDF: KDFHKDFSHA256, AEAD: AEADChaCha20Poly1305},
	}
}

package ohttp

import "github.com/odohd/odoh/odoh"

// The HPKE identifiers (KEM, KDF, AEAD, Suite and their constants) are
// package odoh's, the module's one home for them, so that a suite means
// the same in both protocols: odoh.KEMX25519, odoh.KDFHKDFSHA256,
// odoh.AEADAES128GCM, …

// Symmetric is one pair of HPKE symmetric algorithms of a key
// configuration (RFC 9458 §3.1).
type Symmetric struct {
	KDF  odoh.KDF
	AEAD odoh.AEAD
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
		{KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADAES128GCM},
		{KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADChaCha20Poly1305},
	}
}

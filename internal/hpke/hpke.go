// Package hpke is the one home of the HPKE (RFC 9180) algorithms that the
// protocol packages use: the registry identifiers with their sizes, and a
// small single-shot interface over the backend (circl, confined to
// circl.go), so that odoh (RFC 9230) and ohttp (RFC 9458) share every rule
// and swapping the backend touches one file. The suites of DHKEM(X25519,
// HKDF-SHA256) with HKDF-SHA256, the defaults of both protocols, take a
// faster path of this package's own (x25519.go), checked against RFC
// 9180's vectors and against circl.
//
// Only base mode is offered, and only what both protocols need: derive or
// generate a key pair, parse a public key, set up a sender or a receiver
// context that seals or opens one message and exports secrets, and the raw
// HKDF and AEAD primitives of a suite.
package hpke

import "fmt"

// KEM is an HPKE key encapsulation mechanism identifier (RFC 9180 §7.1).
type KEM uint16

// KDF is an HPKE key derivation function identifier (RFC 9180 §7.2).
type KDF uint16

// AEAD is an HPKE AEAD identifier (RFC 9180 §7.3).
type AEAD uint16

// The algorithms of the IANA HPKE registry that this package implements,
// and the export-only AEAD, which it names but cannot seal with.
const (
	KEMP256   KEM = 0x0010 // DHKEM(P-256, HKDF-SHA256)
	KEMX25519 KEM = 0x0020 // DHKEM(X25519, HKDF-SHA256)

	KDFHKDFSHA256 KDF = 0x0001
	KDFHKDFSHA384 KDF = 0x0002
	KDFHKDFSHA512 KDF = 0x0003

	AEADAES128GCM        AEAD = 0x0001
	AEADAES256GCM        AEAD = 0x0002
	AEADChaCha20Poly1305 AEAD = 0x0003
	// AEADExportOnly cannot seal anything, so neither ODoH nor OHTTP can
	// use it; suites naming it are unsupported.
	AEADExportOnly AEAD = 0xFFFF
)

// Suite is an HPKE cipher suite.
type Suite struct {
	KEM  KEM
	KDF  KDF
	AEAD AEAD
}

// Supported reports whether this package implements every algorithm of s.
func (s Suite) Supported() bool {
	return s.KEM.Supported() && s.KDF.Supported() && s.AEAD.Supported()
}

// String names the suite, e.g. "X25519/HKDF-SHA256/AES-128-GCM".
func (s Suite) String() string {
	return s.KEM.String() + "/" + s.KDF.String() + "/" + s.AEAD.String()
}

// Supported reports whether this package implements the KEM.
func (k KEM) Supported() bool { return k == KEMX25519 || k == KEMP256 }

// String names the KEM, e.g. "X25519", or gives its number.
func (k KEM) String() string {
	switch k {
	case KEMX25519:
		return "X25519"
	case KEMP256:
		return "P-256"
	}
	return fmt.Sprintf("KEM(0x%04x)", uint16(k))
}

// EncSize is Nenc, the length of an encapsulated key, and also Npk, the
// length of a serialized public key, for the DHKEMs supported here; 0 for
// an unsupported KEM.
func (k KEM) EncSize() int {
	switch k {
	case KEMX25519:
		return 32
	case KEMP256:
		return 65
	}
	return 0
}

// PublicKeySize is Npk (RFC 9180 §7.1); 0 for an unsupported KEM.
func (k KEM) PublicKeySize() int { return k.EncSize() }

// SeedSize is the length of the input DeriveKeyPair takes (Nsk for the
// DHKEMs supported here); 0 for an unsupported KEM.
func (k KEM) SeedSize() int {
	if k.Supported() {
		return 32
	}
	return 0
}

// Supported reports whether this package implements the KDF.
func (k KDF) Supported() bool { return k >= KDFHKDFSHA256 && k <= KDFHKDFSHA512 }

// String names the KDF, e.g. "HKDF-SHA256", or gives its number.
func (k KDF) String() string {
	switch k {
	case KDFHKDFSHA256:
		return "HKDF-SHA256"
	case KDFHKDFSHA384:
		return "HKDF-SHA384"
	case KDFHKDFSHA512:
		return "HKDF-SHA512"
	}
	return fmt.Sprintf("KDF(0x%04x)", uint16(k))
}

// HashSize is Nh; 0 for an unsupported KDF.
func (k KDF) HashSize() int {
	switch k {
	case KDFHKDFSHA256:
		return 32
	case KDFHKDFSHA384:
		return 48
	case KDFHKDFSHA512:
		return 64
	}
	return 0
}

// Supported reports whether this package can seal with the AEAD.
func (a AEAD) Supported() bool { return a >= AEADAES128GCM && a <= AEADChaCha20Poly1305 }

// String names the AEAD, e.g. "AES-128-GCM", or gives its number.
func (a AEAD) String() string {
	switch a {
	case AEADAES128GCM:
		return "AES-128-GCM"
	case AEADAES256GCM:
		return "AES-256-GCM"
	case AEADChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	case AEADExportOnly:
		return "Export-only"
	}
	return fmt.Sprintf("AEAD(0x%04x)", uint16(a))
}

// KeySize is Nk of a supported AEAD.
func (a AEAD) KeySize() int {
	if a == AEADAES128GCM {
		return 16
	}
	return 32
}

// NonceSize is Nn, the same for every supported AEAD.
func (a AEAD) NonceSize() int { return 12 }

// TagSize is Nt, the ciphertext expansion of a supported AEAD.
func (a AEAD) TagSize() int { return 16 }

// ResponseNonceSize is max(Nn, Nk), the length of the response nonce of
// both ODoH (RFC 9230 §6.2) and OHTTP (RFC 9458 §4.2).
func (a AEAD) ResponseNonceSize() int { return max(a.NonceSize(), a.KeySize()) }

package odoh

import "fmt"

// KEM is an HPKE key encapsulation mechanism identifier (RFC 9180 §7.1).
type KEM uint16

// KDF is an HPKE key derivation function identifier (RFC 9180 §7.2).
type KDF uint16

// AEAD is an HPKE AEAD identifier (RFC 9180 §7.3).
type AEAD uint16

// The HPKE algorithms this package implements. X25519, HKDF-SHA256 and
// AES-128-GCM are mandatory to implement (RFC 9230 §9).
const (
	KEMP256   KEM = 0x0010 // DHKEM(P-256, HKDF-SHA256)
	KEMX25519 KEM = 0x0020 // DHKEM(X25519, HKDF-SHA256)

	KDFHKDFSHA256 KDF = 0x0001
	KDFHKDFSHA384 KDF = 0x0002
	KDFHKDFSHA512 KDF = 0x0003

	AEADAES128GCM        AEAD = 0x0001
	AEADAES256GCM        AEAD = 0x0002
	AEADChaCha20Poly1305 AEAD = 0x0003
	// AEADExportOnly cannot seal anything, so ODoH cannot use it; configs
	// naming it are skipped like any unsupported suite.
	AEADExportOnly AEAD = 0xFFFF
)

// Suite is an HPKE cipher suite: the algorithms of one [Config].
type Suite struct {
	KEM  KEM
	KDF  KDF
	AEAD AEAD
}

// DefaultSuite returns the mandatory-to-implement suite of RFC 9230 §9:
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
func DefaultSuite() Suite {
	return Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}
}

// Supported reports whether this package implements every algorithm of s.
func (s Suite) Supported() bool {
	return s.KEM.supported() && s.KDF.supported() && s.AEAD.supported()
}

func (s Suite) check() error {
	if !s.Supported() {
		return wrap(ErrUnsupported, "suite %v", s)
	}
	return nil
}

// String names the suite, e.g. "X25519/HKDF-SHA256/AES-128-GCM".
func (s Suite) String() string {
	return s.KEM.String() + "/" + s.KDF.String() + "/" + s.AEAD.String()
}

func (k KEM) supported() bool { return k == KEMX25519 || k == KEMP256 }

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

// encSize is Nenc, the length of an encapsulated key; also Npk for the
// DHKEMs supported here.
func (k KEM) encSize() int {
	switch k {
	case KEMX25519:
		return 32
	case KEMP256:
		return 65
	}
	return 0
}

// seedSize is the input length DeriveKeyPair accepts.
func (k KEM) seedSize() int {
	if k.supported() {
		return 32
	}
	return 0
}

func (k KDF) supported() bool { return k >= KDFHKDFSHA256 && k <= KDFHKDFSHA512 }

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

// hashSize is Nh.
func (k KDF) hashSize() int {
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

func (a AEAD) supported() bool { return a >= AEADAES128GCM && a <= AEADChaCha20Poly1305 }

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

// keySize is Nk.
func (a AEAD) keySize() int {
	if a == AEADAES128GCM {
		return 16
	}
	return 32
}

// nonceSize is Nn and tagSize Nt, the same for every supported AEAD.
func (a AEAD) nonceSize() int { return 12 }
func (a AEAD) tagSize() int   { return 16 }

// respNonceSize is max(Nn, Nk) (RFC 9230 §6.2).
func (a AEAD) respNonceSize() int { return max(a.nonceSize(), a.keySize()) }

// maxQueryPlaintext is the largest Q_plain whose encrypted_message
// (enc ‖ ct) still fits a 16-bit length.
func (s Suite) maxQueryPlaintext() int {
	return maxLen16 - s.KEM.encSize() - s.AEAD.tagSize()
}

// maxResponsePlaintext is the largest R_plain whose ciphertext fits.
func (s Suite) maxResponsePlaintext() int {
	return maxLen16 - s.AEAD.tagSize()
}

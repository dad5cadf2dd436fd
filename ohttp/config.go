package ohttp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/odohd/odoh/internal/hpke"
	"github.com/odohd/odoh/odoh"
)

// Bounds of the HPKE Symmetric Algorithms Length field (RFC 9458 §3.1).
const (
	minSymmetricLen = 4
	maxSymmetricLen = 65532
)

// KeyConfig is one gateway key configuration (RFC 9458 §3.1): a key ID, a
// KEM and its public key, and the symmetric algorithm pairs the gateway
// accepts with it, in order of preference. It is immutable and safe for
// concurrent use; build one with [NewKeyConfig], [ParseKeyConfig],
// [ParseKeyConfigs] or [PrivateKey.Config].
type KeyConfig struct {
	keyID     uint8
	kem       odoh.KEM
	publicKey []byte
	symmetric []Symmetric
	encoded   []byte
	pk        hpke.PublicKey
}

// NewKeyConfig returns the configuration of a public key, checking that
// the key is a valid point of a supported KEM and that at least one of
// the (one to 16383) symmetric pairs is supported.
func NewKeyConfig(keyID uint8, kem odoh.KEM, publicKey []byte, symmetric []Symmetric) (*KeyConfig, error) {
	if !kem.Supported() {
		return nil, wrap(odoh.ErrUnsupported, "KEM %v", kem)
	}
	if n := 4 * len(symmetric); n < minSymmetricLen || n > maxSymmetricLen {
		return nil, malformed("%d symmetric algorithm pairs, want 1 to %d", len(symmetric), maxSymmetricLen/4)
	}
	b := make([]byte, 0, 5+len(publicKey)+4*len(symmetric))
	b = append(b, keyID)
	b = binary.BigEndian.AppendUint16(b, uint16(kem))
	b = append(b, publicKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(4*len(symmetric)))
	for _, s := range symmetric {
		b = binary.BigEndian.AppendUint16(b, uint16(s.KDF))
		b = binary.BigEndian.AppendUint16(b, uint16(s.AEAD))
	}
	return parseKeyConfig(b)
}

// ParseKeyConfig parses one key configuration strictly: a supported KEM, a
// valid public key of its length, a symmetric algorithms length that is a
// multiple of 4 from 4 to 65532 and matches the bytes left exactly, and at
// least one supported pair. An unsupported KEM, or no supported pair, is
// an [odoh.ErrUnsupported] error.
func ParseKeyConfig(b []byte) (*KeyConfig, error) {
	return parseKeyConfig(bytes.Clone(b))
}

// parseKeyConfig parses b, which it keeps.
func parseKeyConfig(b []byte) (*KeyConfig, error) {
	if len(b) < 3 {
		return nil, malformed("key configuration is %d bytes, shorter than its key ID and KEM", len(b))
	}
	c := &KeyConfig{keyID: b[0], kem: odoh.KEM(binary.BigEndian.Uint16(b[1:])), encoded: b}
	if !c.kem.Supported() {
		return nil, wrap(odoh.ErrUnsupported, "key configuration %d: KEM %v", c.keyID, c.kem)
	}
	npk := c.kem.PublicKeySize()
	if len(b) < 3+npk+2 {
		return nil, malformed("key configuration %d is %d bytes, shorter than a %v public key and the algorithms length", c.keyID, len(b), c.kem)
	}
	c.publicKey = b[3 : 3+npk : 3+npk]
	symLen := int(binary.BigEndian.Uint16(b[3+npk:]))
	sym := b[5+npk:]
	switch {
	case symLen < minSymmetricLen || symLen%4 != 0:
		return nil, malformed("key configuration %d: symmetric algorithms length %d is not a positive multiple of 4", c.keyID, symLen)
	case symLen != len(sym):
		return nil, malformed("key configuration %d: symmetric algorithms length %d, but %d bytes follow", c.keyID, symLen, len(sym))
	}
	usable := false
	for i := 0; i < len(sym); i += 4 {
		s := Symmetric{KDF: odoh.KDF(binary.BigEndian.Uint16(sym[i:])), AEAD: odoh.AEAD(binary.BigEndian.Uint16(sym[i+2:]))}
		c.symmetric = append(c.symmetric, s)
		usable = usable || s.Supported()
	}
	pk, err := hpke.ParsePublicKey(c.kem, c.publicKey)
	if err != nil {
		return nil, malformed("key configuration %d: %v", c.keyID, err)
	}
	c.pk = pk
	if !usable {
		return nil, wrap(odoh.ErrUnsupported, "key configuration %d offers no supported symmetric algorithms (%v)", c.keyID, c.symmetricString())
	}
	return c, nil
}

// ParseKeyConfigs parses an application/ohttp-keys body (RFC 9458 §3.2):
// one or more key configurations, each prefixed with its 16-bit length.
// Any framing error rejects the whole list, as §3.2 requires of clients.
// Configurations with an unsupported KEM, or without a supported pair, are
// skipped; the others are returned in the list's order. A list with no
// usable configuration is an [odoh.ErrUnsupported] error.
func ParseKeyConfigs(b []byte) ([]*KeyConfig, error) {
	if len(b) == 0 {
		return nil, malformed("key configurations list is empty")
	}
	var out []*KeyConfig
	skipped := 0
	for rest := b; len(rest) > 0; {
		if len(rest) < 2 {
			return nil, malformed("key configurations list ends inside a length field")
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > len(rest)-2 {
			return nil, malformed("key configuration length %d exceeds the %d bytes left", n, len(rest)-2)
		}
		c, err := ParseKeyConfig(rest[2 : 2+n])
		rest = rest[2+n:]
		switch {
		case err == nil:
			out = append(out, c)
		case isUnsupported(err):
			skipped++
		default:
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, wrap(odoh.ErrUnsupported, "none of %d key configurations is usable", skipped)
	}
	return out, nil
}

// MarshalKeyConfigs serializes configurations, in order of preference, as
// an application/ohttp-keys body.
func MarshalKeyConfigs(configs ...*KeyConfig) ([]byte, error) {
	if len(configs) == 0 {
		return nil, malformed("key configurations list is empty")
	}
	var b []byte
	for _, c := range configs {
		if len(c.encoded) > 1<<16-1 {
			return nil, malformed("key configuration %d is %d bytes, more than a list entry holds", c.keyID, len(c.encoded))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.encoded)))
		b = append(b, c.encoded...)
	}
	return b, nil
}

// KeyID returns the key identifier.
func (c *KeyConfig) KeyID() uint8 { return c.keyID }

// KEM returns the key's KEM.
func (c *KeyConfig) KEM() odoh.KEM { return c.kem }

// PublicKey returns the serialized public key. The caller must not modify
// it.
func (c *KeyConfig) PublicKey() []byte { return c.publicKey }

// Symmetric returns the symmetric algorithm pairs, in the configuration's
// order, unsupported ones included.
func (c *KeyConfig) Symmetric() []Symmetric { return append([]Symmetric(nil), c.symmetric...) }

// Suite returns the suite a client uses with this configuration: the
// first supported pair (every parsed configuration has one).
func (c *KeyConfig) Suite() odoh.Suite {
	for _, s := range c.symmetric {
		if s.Supported() {
			return odoh.Suite{KEM: c.kem, KDF: s.KDF, AEAD: s.AEAD}
		}
	}
	return odoh.Suite{KEM: c.kem}
}

// offers reports whether the configuration lists the pair of s.
func (c *KeyConfig) offers(s odoh.Suite) bool {
	for _, x := range c.symmetric {
		if x.KDF == s.KDF && x.AEAD == s.AEAD {
			return true
		}
	}
	return false
}

// MarshalBinary returns the key configuration encoding of RFC 9458 §3.1.
func (c *KeyConfig) MarshalBinary() ([]byte, error) { return bytes.Clone(c.encoded), nil }

// AppendBinary appends the key configuration encoding to b.
func (c *KeyConfig) AppendBinary(b []byte) ([]byte, error) { return append(b, c.encoded...), nil }

// Equal reports whether two configurations encode the same.
func (c *KeyConfig) Equal(o *KeyConfig) bool { return bytes.Equal(c.encoded, o.encoded) }

// String describes the configuration for logs and tools, e.g.
// "key_id=1 X25519 HKDF-SHA256/AES-128-GCM,HKDF-SHA256/ChaCha20-Poly1305".
func (c *KeyConfig) String() string {
	return fmt.Sprintf("key_id=%d %v %s", c.keyID, c.kem, c.symmetricString())
}

func (c *KeyConfig) symmetricString() string {
	s := make([]string, len(c.symmetric))
	for i, x := range c.symmetric {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

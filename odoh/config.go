package odoh

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"

	"github.com/odohd/odoh/internal/hpke"
)

// Version is the ObliviousDoHConfig version defined by RFC 9230 §5.
const Version uint16 = 0x0001

const maxLen16 = 1<<16 - 1

// Config is one target key configuration (ObliviousDoHConfig with version
// 0x0001): a suite and a public key. It is immutable and safe for concurrent
// use; build one with [NewConfig], [ParseConfigs] or [PrivateKey.Config].
type Config struct {
	suite     Suite
	publicKey []byte
	contents  []byte // serialized ObliviousDoHConfigContents, input of key_id
	keyID     []byte
	pk        hpke.PublicKey
}

// NewConfig returns the config for a suite and a serialized public key,
// checking that the key is a valid point of the suite's KEM.
func NewConfig(s Suite, publicKey []byte) (*Config, error) {
	if err := checkSuite(s); err != nil {
		return nil, err
	}
	if len(publicKey) != s.KEM.EncSize() {
		return nil, malformed("%v public key is %d bytes, want %d", s.KEM, len(publicKey), s.KEM.EncSize())
	}
	pk, err := parsePublicKey(s, publicKey)
	if err != nil {
		return nil, err
	}
	contents := make([]byte, 0, 8+len(publicKey))
	contents = binary.BigEndian.AppendUint16(contents, uint16(s.KEM))
	contents = binary.BigEndian.AppendUint16(contents, uint16(s.KDF))
	contents = binary.BigEndian.AppendUint16(contents, uint16(s.AEAD))
	contents = appendLP16(contents, publicKey)
	return newConfig(s, contents, pk), nil
}

func newConfig(s Suite, contents []byte, pk hpke.PublicKey) *Config {
	prk := hpke.Extract(s.KDF, nil, contents)
	return &Config{
		suite:     s,
		publicKey: contents[8:],
		contents:  contents,
		keyID:     hpke.Expand(s.KDF, prk, []byte("odoh key id"), s.KDF.HashSize()),
		pk:        pk,
	}
}

// Suite returns the config's HPKE suite.
func (c *Config) Suite() Suite { return c.suite }

// PublicKey returns the serialized public key. The caller must not modify it.
func (c *Config) PublicKey() []byte { return c.publicKey }

// KeyID returns the key identifier of RFC 9230 §6.1:
// Expand(Extract("", contents), "odoh key id", Nh). The caller must not
// modify it.
func (c *Config) KeyID() []byte { return c.keyID }

// Equal reports whether two configs have the same contents.
func (c *Config) Equal(o *Config) bool { return bytes.Equal(c.contents, o.contents) }

// String describes the config for logs and tools: suite and key ID.
func (c *Config) String() string {
	return c.suite.String() + " key_id=" + hex.EncodeToString(c.keyID)
}

// MarshalBinary returns the ObliviousDoHConfig: version ‖ length ‖ contents.
func (c *Config) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, 4+len(c.contents)))
}

// AppendBinary appends the ObliviousDoHConfig to b.
func (c *Config) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, Version)
	return appendLP16(b, c.contents), nil
}

// MarshalConfigs serializes configs, in decreasing order of preference, as
// an ObliviousDoHConfigs list, the body of /.well-known/odohconfigs.
func MarshalConfigs(configs ...*Config) ([]byte, error) {
	if len(configs) == 0 {
		return nil, malformed("configs list is empty")
	}
	b := []byte{0, 0}
	for _, c := range configs {
		b, _ = c.AppendBinary(b)
	}
	if len(b)-2 > maxLen16 {
		return nil, wrap(ErrTooLarge, "configs list is %d bytes", len(b)-2)
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b, nil
}

// ParseConfigs parses an ObliviousDoHConfigs list strictly: the outer length
// must match the input exactly, and every config must be well framed.
// Configs with an unknown version or an unsupported suite are skipped, as
// RFC 9230 §5 requires of clients; the others are returned in the list's
// order (decreasing preference). A list without a usable config is an
// [ErrUnsupported] error.
func ParseConfigs(b []byte) ([]*Config, error) {
	total, rest, ok := readUint16(b)
	if !ok {
		return nil, malformed("configs list is %d bytes, shorter than its length field", len(b))
	}
	if int(total) != len(rest) {
		return nil, malformed("configs list length %d does not match the %d bytes that follow", total, len(rest))
	}
	if total == 0 {
		return nil, malformed("configs list is empty")
	}
	var configs []*Config
	skipped := 0
	for len(rest) > 0 {
		version, r, ok := readUint16(rest)
		if !ok {
			return nil, malformed("config truncated in its version field")
		}
		contents, r, ok := readLP16(r)
		if !ok {
			return nil, malformed("config length exceeds the bytes left in the list")
		}
		rest = r
		if version != Version {
			skipped++
			continue
		}
		c, err := parseContents(contents)
		if err != nil {
			return nil, err
		}
		if c == nil {
			skipped++
			continue
		}
		configs = append(configs, c)
	}
	if len(configs) == 0 {
		return nil, wrap(ErrUnsupported, "none of %d configs has version 0x%04x and a supported suite", skipped, Version)
	}
	return configs, nil
}

// parseContents parses one ObliviousDoHConfigContents. It returns nil, nil
// for a well-framed config with an unsupported suite.
func parseContents(b []byte) (*Config, error) {
	if len(b) < 6 {
		return nil, malformed("config contents are %d bytes, shorter than the suite", len(b))
	}
	s := Suite{
		KEM:  KEM(binary.BigEndian.Uint16(b)),
		KDF:  KDF(binary.BigEndian.Uint16(b[2:])),
		AEAD: AEAD(binary.BigEndian.Uint16(b[4:])),
	}
	pub, rest, ok := readLP16(b[6:])
	if !ok {
		return nil, malformed("config public key length exceeds its contents")
	}
	if len(rest) != 0 {
		return nil, malformed("config contents have %d trailing bytes", len(rest))
	}
	if len(pub) == 0 {
		return nil, malformed("config public key is empty")
	}
	if !s.Supported() {
		return nil, nil
	}
	if len(pub) != s.KEM.EncSize() {
		return nil, malformed("%v public key is %d bytes, want %d", s.KEM, len(pub), s.KEM.EncSize())
	}
	pk, err := parsePublicKey(s, pub)
	if err != nil {
		return nil, err
	}
	return newConfig(s, bytes.Clone(b), pk), nil
}

func readUint16(b []byte) (uint16, []byte, bool) {
	if len(b) < 2 {
		return 0, b, false
	}
	return binary.BigEndian.Uint16(b), b[2:], true
}

// readLP16 reads a 16-bit length-prefixed field.
func readLP16(b []byte) (field, rest []byte, ok bool) {
	n, r, ok := readUint16(b)
	if !ok || int(n) > len(r) {
		return nil, b, false
	}
	return r[:n:n], r[n:], true
}

// appendLP16 appends a 16-bit length prefix and v; callers have checked
// that len(v) fits.
func appendLP16(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

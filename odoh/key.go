package odoh

import "github.com/odohd/odoh/internal/hpke"

// PrivateKey is a target's key pair with its public [Config]. It is safe for
// concurrent use.
type PrivateKey struct {
	config *Config
	sk     hpke.PrivateKey
}

// GenerateKey returns a random key pair for suite s.
func GenerateKey(s Suite) (*PrivateKey, error) {
	if err := checkSuite(s); err != nil {
		return nil, err
	}
	sk, pub, err := generateKeyPair(s)
	if err != nil {
		return nil, err
	}
	return newPrivateKey(s, sk, pub)
}

// SeedSize is the length of the seed [DeriveKey] takes for every supported
// KEM.
const SeedSize = 32

// DeriveKey derives a key pair deterministically from a secret seed of
// [SeedSize] bytes, with RFC 9180 DeriveKeyPair (as odoh-go's
// CreateKeyPairFromSeed does), so that replicas sharing a seed share keys.
func DeriveKey(s Suite, seed []byte) (*PrivateKey, error) {
	if err := checkSuite(s); err != nil {
		return nil, err
	}
	if len(seed) != s.KEM.SeedSize() {
		// Never echo the seed: it is secret.
		return nil, wrap(ErrUnsupported, "seed is %d bytes, want %d", len(seed), s.KEM.SeedSize())
	}
	sk, pub, err := deriveKeyPair(s, seed)
	if err != nil {
		return nil, err
	}
	return newPrivateKey(s, sk, pub)
}

func newPrivateKey(s Suite, sk hpke.PrivateKey, pub []byte) (*PrivateKey, error) {
	c, err := NewConfig(s, pub)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{config: c, sk: sk}, nil
}

// Config returns the public configuration of the key.
func (k *PrivateKey) Config() *Config { return k.config }

// KeyID returns the key ID of the key's config.
func (k *PrivateKey) KeyID() []byte { return k.config.keyID }

package ohttp

import (
	"github.com/odohd/odoh/internal/hpke"
	"github.com/odohd/odoh/odoh"
)

// PrivateKey is a gateway's key pair with its public [KeyConfig]. It is
// safe for concurrent use.
//
// RFC 9458 §6.4 requires that a gateway's keys be valid for no other
// protocol that uses HPKE with the same labels: derive them from seeds
// used for nothing else.
type PrivateKey struct {
	config *KeyConfig
	sk     hpke.PrivateKey
}

// SeedSize is the length of the seed [DeriveKey] takes for every
// supported KEM.
const SeedSize = 32

// GenerateKey returns a random key pair of the KEM under the key ID,
// offering the given symmetric pairs (none: [DefaultSymmetric]).
func GenerateKey(keyID uint8, kem odoh.KEM, symmetric ...Symmetric) (*PrivateKey, error) {
	if !kem.Supported() {
		return nil, wrap(odoh.ErrUnsupported, "KEM %v", kem)
	}
	sk, pub, err := hpke.GenerateKeyPair(kem)
	if err != nil {
		return nil, wrap(odoh.ErrUnsupported, "%v", err)
	}
	return newPrivateKey(keyID, kem, sk, pub, symmetric)
}

// DeriveKey derives a key pair deterministically from a secret seed of
// [SeedSize] bytes with RFC 9180 DeriveKeyPair, so that replicas sharing
// the seed share the key.
func DeriveKey(keyID uint8, kem odoh.KEM, seed []byte, symmetric ...Symmetric) (*PrivateKey, error) {
	if !kem.Supported() {
		return nil, wrap(odoh.ErrUnsupported, "KEM %v", kem)
	}
	if len(seed) != kem.SeedSize() {
		// Never echo the seed: it is secret.
		return nil, wrap(odoh.ErrUnsupported, "seed is %d bytes, want %d", len(seed), kem.SeedSize())
	}
	sk, pub, err := hpke.DeriveKeyPair(kem, seed)
	if err != nil {
		return nil, wrap(odoh.ErrUnsupported, "%v", err)
	}
	return newPrivateKey(keyID, kem, sk, pub, symmetric)
}

func newPrivateKey(keyID uint8, kem odoh.KEM, sk hpke.PrivateKey, pub []byte, symmetric []Symmetric) (*PrivateKey, error) {
	if len(symmetric) == 0 {
		symmetric = DefaultSymmetric()
	}
	for _, s := range symmetric {
		if !s.Supported() {
			// A gateway must not advertise what it cannot decrypt.
			return nil, wrap(odoh.ErrUnsupported, "symmetric algorithms %v", s)
		}
	}
	c, err := NewKeyConfig(keyID, kem, pub, symmetric)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{config: c, sk: sk}, nil
}

// Config returns the key's public configuration.
func (k *PrivateKey) Config() *KeyConfig { return k.config }

// KeyID returns the key's identifier.
func (k *PrivateKey) KeyID() uint8 { return k.config.keyID }

package hpke

// This file is the only one of the module's packages that imports circl.

import (
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// PublicKey is a parsed KEM public key, checked to be a valid point.
type PublicKey struct {
	k kem.PublicKey
	x *x25519Key // for the fast path (x25519.go)
}

// PrivateKey is a KEM private key. It is safe for concurrent use.
type PrivateKey struct {
	k kem.PrivateKey
	x *x25519Pair // the serialized pair, for the fast path (x25519.go)
}

// x25519Shared sets dh to X25519(sk, pk) (RFC 7748 §5) and reports whether
// it is not all zeros: circl's assembly ladder, the fastest at hand.
func x25519Shared(dh, sk, pk *[x25519Size]byte) bool {
	return x25519.Shared((*x25519.Key)(dh), (*x25519.Key)(sk), (*x25519.Key)(pk))
}

var errUnsupported = errors.New("hpke: unsupported algorithm")

func (s Suite) circl() hpke.Suite {
	return hpke.NewSuite(hpke.KEM(s.KEM), hpke.KDF(s.KDF), hpke.AEAD(s.AEAD))
}

// GenerateKeyPair returns a random key pair of k and the serialized public
// key.
func GenerateKeyPair(k KEM) (PrivateKey, []byte, error) {
	if !k.Supported() {
		return PrivateKey{}, nil, fmt.Errorf("%w: %v", errUnsupported, k)
	}
	pk, sk, err := hpke.KEM(k).Scheme().GenerateKeyPair()
	if err != nil {
		return PrivateKey{}, nil, fmt.Errorf("hpke: generating key pair: %w", err)
	}
	return keyPair(k, pk, sk)
}

// DeriveKeyPair runs RFC 9180 DeriveKeyPair on a secret seed of
// k.SeedSize() bytes and returns the key pair and the serialized public key.
func DeriveKeyPair(k KEM, seed []byte) (PrivateKey, []byte, error) {
	if !k.Supported() {
		return PrivateKey{}, nil, fmt.Errorf("%w: %v", errUnsupported, k)
	}
	if len(seed) != k.SeedSize() { // circl panics on a short seed
		return PrivateKey{}, nil, fmt.Errorf("hpke: seed is %d bytes, want %d", len(seed), k.SeedSize())
	}
	pk, sk := hpke.KEM(k).Scheme().DeriveKeyPair(seed)
	return keyPair(k, pk, sk)
}

// ParsePrivateKey parses a serialized private key of k (RFC 9180 §7.1.2
// SerializePrivateKey) and returns it with its serialized public key. Test
// vectors need it; deployments derive or generate their keys.
func ParsePrivateKey(k KEM, b []byte) (PrivateKey, []byte, error) {
	if !k.Supported() {
		return PrivateKey{}, nil, fmt.Errorf("%w: %v", errUnsupported, k)
	}
	sk, err := hpke.KEM(k).Scheme().UnmarshalBinaryPrivateKey(b)
	if err != nil {
		return PrivateKey{}, nil, fmt.Errorf("hpke: private key: %w", err)
	}
	return keyPair(k, sk.Public(), sk)
}

func keyPair(k KEM, pk kem.PublicKey, sk kem.PrivateKey) (PrivateKey, []byte, error) {
	// Computes any lazily derived public key now, before the private key is
	// shared between goroutines (circl's X25519 keys do this without a lock).
	sk.Public()
	b, err := pk.MarshalBinary()
	if err != nil {
		return PrivateKey{}, nil, fmt.Errorf("hpke: marshalling public key: %w", err)
	}
	key := PrivateKey{k: sk}
	if k == KEMX25519 {
		raw, err := sk.MarshalBinary()
		if err != nil || len(raw) != x25519Size || len(b) != x25519Size {
			return PrivateKey{}, nil, fmt.Errorf("hpke: marshalling X25519 private key: %v", err)
		}
		key.x = new(x25519Pair)
		copy(key.x.sk[:], raw)
		copy(key.x.pk[:], b)
	}
	return key, b, nil
}

// ParsePublicKey checks the length of a serialized public key of k and
// that it is a valid point.
func ParsePublicKey(k KEM, b []byte) (PublicKey, error) {
	if !k.Supported() {
		return PublicKey{}, fmt.Errorf("%w: %v", errUnsupported, k)
	}
	if len(b) != k.PublicKeySize() {
		return PublicKey{}, fmt.Errorf("hpke: %v public key is %d bytes, want %d", k, len(b), k.PublicKeySize())
	}
	pk, err := hpke.KEM(k).Scheme().UnmarshalBinaryPublicKey(b)
	if err != nil {
		return PublicKey{}, fmt.Errorf("hpke: public key: %w", err)
	}
	key := PublicKey{k: pk}
	if k == KEMX25519 {
		key.x = new(x25519Key)
		copy(key.x.pk[:], b)
	}
	return key, nil
}

// Sender is a base-mode sender context (RFC 9180 §5.1.1). It is not safe
// for concurrent use: make one per message.
type Sender struct {
	s hpke.Sealer // circl's, for the suites without the fast path
	c *keyContext
}

// NewSender runs SetupBaseS with the receiver's public key and info, using
// the system's randomness, and returns the encapsulated key and the
// context. The suite must be supported.
func NewSender(s Suite, pk PublicKey, info []byte) ([]byte, Sender, error) {
	if !s.Supported() {
		return nil, Sender{}, fmt.Errorf("%w: %v", errUnsupported, s)
	}
	if fastSuite(s) && pk.x != nil {
		enc, c, err := randomSender(s, pk.x, info)
		if err != nil {
			return nil, Sender{}, fmt.Errorf("hpke: sender setup: %w", err)
		}
		return enc, Sender{c: c}, nil
	}
	snd, err := s.circl().NewSender(pk.k, info)
	if err != nil {
		return nil, Sender{}, fmt.Errorf("hpke: sender: %w", err)
	}
	enc, sealer, err := snd.Setup(nil) // nil: crypto/rand
	if err != nil {
		return nil, Sender{}, fmt.Errorf("hpke: sender setup: %w", err)
	}
	return enc, Sender{s: sealer}, nil
}

// NewSenderWithEphemeral is NewSender with the ephemeral secret skE
// instead of a random one, for reproducing published test vectors (RFC
// 9458 Appendix A): reusing an ephemeral key breaks HPKE, so nothing else
// may call it. Only X25519 with HKDF-SHA256 is offered.
func NewSenderWithEphemeral(s Suite, pk PublicKey, info, skE []byte) ([]byte, Sender, error) {
	if !fastSuite(s) || pk.x == nil || len(skE) != x25519Size {
		return nil, Sender{}, fmt.Errorf("%w: a given ephemeral key with %v", errUnsupported, s)
	}
	enc, c, err := newFastSender(s, pk.x, info, (*[x25519Size]byte)(skE))
	if err != nil {
		return nil, Sender{}, fmt.Errorf("hpke: sender setup: %w", err)
	}
	return enc, Sender{c: c}, nil
}

// Seal encrypts pt with aad (RFC 9180 §5.2).
func (c Sender) Seal(pt, aad []byte) ([]byte, error) {
	if c.c != nil {
		return c.c.seal(pt, aad)
	}
	return c.s.Seal(pt, aad)
}

// Export derives an n-byte secret from the context (RFC 9180 §5.3); n is
// at most 255·Nh for every caller.
func (c Sender) Export(exporterContext []byte, n int) []byte {
	if c.c != nil {
		return c.c.export(exporterContext, n)
	}
	return c.s.Export(exporterContext, uint(n))
}

// Receiver is a base-mode receiver context (RFC 9180 §5.1.1). It is not
// safe for concurrent use: make one per message.
type Receiver struct {
	o hpke.Opener // circl's, for the suites without the fast path
	c *keyContext
}

// NewReceiver runs SetupBaseR with the private key, the encapsulated key
// enc and info. The suite must be supported and sk a key of its KEM.
func NewReceiver(s Suite, sk PrivateKey, enc, info []byte) (Receiver, error) {
	if fastSuite(s) && sk.x != nil && len(enc) == x25519Size {
		// The fast path keeps its frames small (errors and circl's path
		// live in other functions): it runs deep in request handlers.
		c, err := newFastReceiver(s, sk.x, enc, info)
		if err != nil {
			return Receiver{}, receiverError(err)
		}
		return Receiver{c: c}, nil
	}
	return newCirclReceiver(s, sk, enc, info)
}

//go:noinline
func receiverError(err error) error { return fmt.Errorf("hpke: receiver setup: %w", err) }

// newCirclReceiver is NewReceiver of the suites without the fast path,
// and of its errors.
//
//go:noinline
func newCirclReceiver(s Suite, sk PrivateKey, enc, info []byte) (Receiver, error) {
	if !s.Supported() {
		return Receiver{}, fmt.Errorf("%w: %v", errUnsupported, s)
	}
	if len(enc) != s.KEM.EncSize() {
		return Receiver{}, fmt.Errorf("hpke: encapsulated key is %d bytes, want %d", len(enc), s.KEM.EncSize())
	}
	rcv, err := s.circl().NewReceiver(sk.k, info)
	if err != nil {
		return Receiver{}, fmt.Errorf("hpke: receiver: %w", err)
	}
	opener, err := rcv.Setup(enc)
	if err != nil {
		return Receiver{}, fmt.Errorf("hpke: receiver setup: %w", err)
	}
	return Receiver{o: opener}, nil
}

// Open decrypts and authenticates ct with aad (RFC 9180 §5.2).
func (c Receiver) Open(ct, aad []byte) ([]byte, error) {
	if c.c != nil {
		return c.c.open(ct, aad)
	}
	return c.o.Open(ct, aad)
}

// Export derives an n-byte secret from the context (RFC 9180 §5.3).
func (c Receiver) Export(exporterContext []byte, n int) []byte {
	if c.c != nil {
		return c.c.export(exporterContext, n)
	}
	return c.o.Export(exporterContext, uint(n))
}

// Extract is raw HKDF-Extract of the KDF (not HPKE's labelled one); the
// KDF must be supported.
func Extract(k KDF, salt, ikm []byte) []byte {
	if k == KDFHKDFSHA256 {
		out := new([sha256Size]byte)
		in := make([]byte, sha256.BlockSize+len(ikm))
		copy(in[sha256.BlockSize:], ikm)
		hmacSHA256(out, salt, in, new(hmacBufs))
		return out[:]
	}
	return hpke.KDF(k).Extract(ikm, salt) // circl's order is (secret, salt)
}

// Expand is raw HKDF-Expand; n is at most 255·Nh for every caller.
func Expand(k KDF, prk, info []byte, n int) []byte {
	if k == KDFHKDFSHA256 && len(prk) >= sha256Size {
		out := make([]byte, n)
		hkdfExpand(out, prk[:sha256Size], info, make([]byte, 0, sha256.BlockSize+sha256Size+len(info)+1), new(hmacBufs))
		return out
	}
	return hpke.KDF(k).Expand(prk, info, uint(n))
}

// KeyNonce sets key to Expand(prk, keyInfo, len(key)) and nonce to
// Expand(prk, nonceInfo, len(nonce)) with prk = Extract(salt, ikm): how
// ODoH (RFC 9230 §6.2) and OHTTP (RFC 9458 §4.4) key a response. The KDF
// must be supported, key and nonce at most Nh bytes, the infos short.
func KeyNonce(k KDF, salt, ikm []byte, keyInfo, nonceInfo string, key, nonce []byte) {
	if k != KDFHKDFSHA256 || len(keyInfo) > 32 || len(nonceInfo) > 32 {
		prk := Extract(k, salt, ikm)
		copy(key, Expand(k, prk, []byte(keyInfo), len(key)))
		copy(nonce, Expand(k, prk, []byte(nonceInfo), len(nonce)))
		return
	}
	var b hmacBufs
	var prk [sha256Size]byte
	var buf [sha256.BlockSize + 2*sha256Size + 1]byte
	if len(ikm) <= 2*sha256Size {
		hmacSHA256(&prk, salt, append(buf[:sha256.BlockSize], ikm...), &b)
	} else {
		prk = *(*[sha256Size]byte)(Extract(k, salt, ikm))
	}
	// One block each (len <= Nh): T(1) = HMAC(prk, info ‖ 0x01).
	hmacSHA256(&b.t, prk[:], append(append(buf[:sha256.BlockSize], keyInfo...), 1), &b)
	copy(key, b.t[:])
	hmacSHA256(&b.t, prk[:], append(append(buf[:sha256.BlockSize], nonceInfo...), 1), &b)
	copy(nonce, b.t[:])
}

// NewAEAD returns the AEAD a keyed with key.
func NewAEAD(a AEAD, key []byte) (cipher.AEAD, error) {
	if !a.Supported() {
		return nil, fmt.Errorf("%w: %v", errUnsupported, a)
	}
	c, err := hpke.AEAD(a).New(key)
	if err != nil {
		return nil, fmt.Errorf("hpke: aead: %w", err)
	}
	return c, nil
}

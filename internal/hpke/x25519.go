package hpke

// The fast path of the default suites: DHKEM(X25519, HKDF-SHA256) with the
// HKDF-SHA256 key schedule (RFC 9180 §4.1, §5.1, §7.1.3), any supported
// AEAD, base mode only. circl computes the same values; this path exists
// because its cost per message is what every ODoH query pays: the
// ephemeral public key is a fixed-base Edwards multiplication
// (filippo.io/edwards25519, about two thirds of a Montgomery ladder's
// cost), the ephemeral secret is 32 random bytes (RFC 7748 §6.1) rather
// than DeriveKeyPair of a seed, and the HKDF steps hash on the stack with
// the constant parts of the key schedule computed once.

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

const (
	x25519Size = 32          // Nsk, Npk, Nenc and Ndh of DHKEM(X25519)
	sha256Size = sha256.Size // Nh and Nsecret
	modeBase   = 0x00
	versionID  = "HPKE-v1"
)

// fastSuite reports whether s takes the fast path.
func fastSuite(s Suite) bool {
	return s.KEM == KEMX25519 && s.KDF == KDFHKDFSHA256 && s.AEAD.Supported()
}

// kemSuiteID is "KEM" ‖ I2OSP(kem_id, 2) of DHKEM(X25519, HKDF-SHA256).
var kemSuiteID = []byte{'K', 'E', 'M', 0x00, 0x20}

// suiteID is "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖
// I2OSP(aead_id, 2).
func suiteID(s Suite) [10]byte {
	var id [10]byte
	copy(id[:], "HPKE")
	binary.BigEndian.PutUint16(id[4:], uint16(s.KEM))
	binary.BigEndian.PutUint16(id[6:], uint16(s.KDF))
	binary.BigEndian.PutUint16(id[8:], uint16(s.AEAD))
	return id
}

// hmacBuf bounds the HMAC inputs hashed in buffers on the stack; longer
// ones (long infos or exporter contexts) are copied to the heap.
const hmacBuf = 256

// hmacSHA256 sets out to HMAC-SHA256(key, msg) (RFC 2104).
func hmacSHA256(out *[sha256Size]byte, key, msg []byte) {
	var k [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var buf [hmacBuf]byte
	var in []byte
	if n := sha256.BlockSize + len(msg); n <= len(buf) {
		in = buf[:n]
	} else {
		in = make([]byte, n)
	}
	for i := range sha256.BlockSize {
		in[i] = k[i] ^ 0x36
	}
	copy(in[sha256.BlockSize:], msg)
	inner := sha256.Sum256(in)
	for i := range sha256.BlockSize {
		buf[i] = k[i] ^ 0x5c
	}
	copy(buf[sha256.BlockSize:], inner[:])
	*out = sha256.Sum256(buf[:sha256.BlockSize+sha256Size])
}

// hkdfExpand writes HKDF-Expand(prk, info, len(out)) (RFC 5869 §2.3) to
// out; len(out) is at most 255·32.
func hkdfExpand(out, prk, info []byte) {
	var t [sha256Size]byte
	var buf [hmacBuf]byte
	for i := byte(1); len(out) > 0; i++ {
		msg := buf[:0]
		if i > 1 {
			msg = append(msg, t[:]...)
		}
		msg = append(append(msg, info...), i)
		hmacSHA256(&t, prk, msg)
		out = out[copy(out, t[:]):]
	}
}

// labeledExtract is RFC 9180 LabeledExtract(salt, label, ikm) with the
// given suite_id.
func labeledExtract(out *[sha256Size]byte, id, salt []byte, label string, ikm []byte) {
	var buf [hmacBuf]byte
	msg := append(append(append(append(buf[:0], versionID...), id...), label...), ikm...)
	hmacSHA256(out, salt, msg)
}

// labeledExpand writes RFC 9180 LabeledExpand(prk, label, info, len(out))
// with the given suite_id to out.
func labeledExpand(out, prk, id []byte, label string, info []byte) {
	var buf [hmacBuf]byte
	msg := binary.BigEndian.AppendUint16(buf[:0], uint16(len(out)))
	msg = append(append(append(append(msg, versionID...), id...), label...), info...)
	hkdfExpand(out, prk, msg)
}

// x25519Public returns the X25519 public key of the secret sk: the
// Montgomery u-coordinate of the clamped scalar times the base point,
// computed on the birationally equivalent Edwards curve (RFC 7748 §4.1),
// whose fixed-base multiplication uses precomputed tables.
func x25519Public(pk, sk *[x25519Size]byte) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(sk[:])
	if err != nil {
		panic("hpke: clamping a 32-byte scalar: " + err.Error()) // cannot happen: 32 bytes
	}
	copy(pk[:], new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery())
}

var (
	errLowOrder     = errors.New("hpke: X25519 shared secret is zero (low-order public key)")
	errMessageLimit = errors.New("hpke: message limit of the context reached")
)

// x25519Key is a receiver's serialized X25519 public key with the table
// of its point that senders build on first use (x25519fixed.go).
type x25519Key struct {
	pk    [x25519Size]byte
	fixed fixedKey
}

// x25519Encap is DHKEM(X25519, HKDF-SHA256) Encap (RFC 9180 §4.1) with the
// ephemeral secret skE: it writes the encapsulated key to enc and returns
// the shared secret.
func x25519Encap(ss *[sha256Size]byte, enc *[x25519Size]byte, skE *[x25519Size]byte, pkR *x25519Key) error {
	var dh [x25519Size]byte
	if !pkR.fixed.encap(&dh, enc, skE, &pkR.pk) {
		return errLowOrder
	}
	extractAndExpand(ss, &dh, enc[:], pkR.pk[:])
	return nil
}

// x25519Decap is Decap (RFC 9180 §4.1) of the receiver's secret skR and
// public key pkR.
func x25519Decap(ss *[sha256Size]byte, enc []byte, skR, pkR *[x25519Size]byte) error {
	var pkE, dh [x25519Size]byte
	copy(pkE[:], enc)
	if !x25519Shared(&dh, skR, &pkE) {
		return errLowOrder
	}
	extractAndExpand(ss, &dh, enc, pkR[:])
	return nil
}

// extractAndExpand is the DHKEM's ExtractAndExpand(dh, enc ‖ pkR).
func extractAndExpand(ss *[sha256Size]byte, dh *[x25519Size]byte, enc, pkR []byte) {
	var prk [sha256Size]byte
	labeledExtract(&prk, kemSuiteID, nil, "eae_prk", dh[:])
	var kemContext [2 * x25519Size]byte
	copy(kemContext[copy(kemContext[:], enc):], pkR)
	labeledExpand(ss[:], prk[:], kemSuiteID, "shared_secret", kemContext[:])
}

// keyContext is a base-mode encryption context of the fast path (RFC 9180
// §5.1, §5.2): either direction, since a single-shot context never needs
// both.
type keyContext struct {
	id       [10]byte
	aead     cipher.AEAD
	nonce    [12]byte // base_nonce; Nn is 12 for every supported AEAD
	cur      [12]byte // the nonce of the message being sealed or opened
	seq      uint64
	exporter [sha256Size]byte
}

// keySchedule is KeySchedule(mode_base, shared_secret, info, "", "").
func keySchedule(s Suite, ss *[sha256Size]byte, info []byte) (*keyContext, error) {
	c := &keyContext{id: suiteID(s)}
	id := c.id[:]
	var pskIDHash, infoHash, secret [sha256Size]byte
	labeledExtract(&pskIDHash, id, nil, "psk_id_hash", nil)
	labeledExtract(&infoHash, id, nil, "info_hash", info)
	var ksc [1 + 2*sha256Size]byte
	ksc[0] = modeBase
	copy(ksc[1:], pskIDHash[:])
	copy(ksc[1+sha256Size:], infoHash[:])
	labeledExtract(&secret, id, ss[:], "secret", nil)
	var key [32]byte
	labeledExpand(key[:s.AEAD.KeySize()], secret[:], id, "key", ksc[:])
	labeledExpand(c.nonce[:], secret[:], id, "base_nonce", ksc[:])
	labeledExpand(c.exporter[:], secret[:], id, "exp", ksc[:])
	a, err := NewAEAD(s.AEAD, key[:s.AEAD.KeySize()])
	if err != nil {
		return nil, err
	}
	c.aead = a
	return c, nil
}

// seqNonce returns base_nonce XOR I2OSP(seq, Nn) and advances seq (RFC 9180
// §5.2), refusing to wrap.
func (c *keyContext) seqNonce() ([]byte, error) {
	if c.seq == ^uint64(0) {
		return nil, errMessageLimit
	}
	c.cur = c.nonce
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], c.seq)
	subtle.XORBytes(c.cur[len(c.cur)-8:], c.cur[len(c.cur)-8:], s[:])
	c.seq++
	return c.cur[:], nil
}

func (c *keyContext) seal(pt, aad []byte) ([]byte, error) {
	nonce, err := c.seqNonce()
	if err != nil {
		return nil, err
	}
	return c.aead.Seal(nil, nonce, pt, aad), nil
}

func (c *keyContext) open(ct, aad []byte) ([]byte, error) {
	nonce, err := c.seqNonce()
	if err != nil {
		return nil, err
	}
	pt, err := c.aead.Open(nil, nonce, ct, aad)
	if err != nil {
		c.seq-- // a failed open does not use up the sequence number
		return nil, fmt.Errorf("hpke: open: %w", err)
	}
	return pt, nil
}

// export is Export(exporter_context, n) = LabeledExpand(exporter_secret,
// "sec", exporter_context, n).
func (c *keyContext) export(exporterContext []byte, n int) []byte {
	out := make([]byte, n)
	labeledExpand(out, c.exporter[:], c.id[:], "sec", exporterContext)
	return out
}

// newFastSender is SetupBaseS with the ephemeral secret skE (random, or a
// test vector's).
func newFastSender(s Suite, pkR *x25519Key, info []byte, skE *[x25519Size]byte) ([]byte, *keyContext, error) {
	var ss [sha256Size]byte
	enc := new([x25519Size]byte)
	if err := x25519Encap(&ss, enc, skE, pkR); err != nil {
		return nil, nil, err
	}
	c, err := keySchedule(s, &ss, info)
	if err != nil {
		return nil, nil, err
	}
	return enc[:], c, nil
}

// randomSender is newFastSender with a fresh random ephemeral secret.
func randomSender(s Suite, pkR *x25519Key, info []byte) ([]byte, *keyContext, error) {
	var skE [x25519Size]byte
	if _, err := rand.Read(skE[:]); err != nil {
		return nil, nil, fmt.Errorf("hpke: ephemeral key: %w", err)
	}
	return newFastSender(s, pkR, info, &skE)
}

// newFastReceiver is SetupBaseR.
func newFastReceiver(s Suite, x *x25519Pair, enc, info []byte) (*keyContext, error) {
	var ss [sha256Size]byte
	if err := x25519Decap(&ss, enc, &x.sk, &x.pk); err != nil {
		return nil, err
	}
	return keySchedule(s, &ss, info)
}

// x25519Pair is an X25519 key pair in its serialized form, which the fast
// path works on.
type x25519Pair struct {
	sk, pk [x25519Size]byte
}

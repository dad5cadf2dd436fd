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
	"sync/atomic"

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

// hmacBuf is the room for HMAC messages in a scratch buffer: enough for
// every message of ODoH's and OHTTP's key schedules; longer ones (long
// infos or exporter contexts) take a path that allocates.
const hmacBuf = 128

// hmacBufs are the buffers of one HMAC-SHA256 computation beside its
// input.
type hmacBufs struct {
	o [sha256.BlockSize + sha256Size]byte // the key, then opad ‖ inner hash
	t [sha256Size]byte                    // HKDF-Expand's T(i)
}

// scratch holds the buffers of one context's key derivation. It lives on
// the heap (in the keyContext) rather than on the goroutine stack: the key
// schedule runs deep in a request handler's call chain, where stack frames
// of a few hundred bytes each would make the handler's fresh goroutine
// grow (copy) its stack, once per request.
type scratch struct {
	hmacBufs
	in     [sha256.BlockSize + hmacBuf]byte // room for ipad ‖ message
	prk    [sha256Size]byte
	secret [sha256Size]byte // the shared secret, then the key schedule's
	key    [32]byte         // Nk <= 32
	dh     [x25519Size]byte
	kemCtx [2 * x25519Size]byte // enc ‖ pkR
}

// hmacSHA256 sets out to HMAC-SHA256(key, msg) (RFC 2104) where in is
// sha256.BlockSize bytes of room followed by msg; it overwrites the room.
// out may be b.t.
func hmacSHA256(out *[sha256Size]byte, key, in []byte, b *hmacBufs) {
	if len(key) > sha256.BlockSize {
		*(*[sha256Size]byte)(b.o[:]) = sha256.Sum256(key)
		clear(b.o[sha256Size:sha256.BlockSize])
	} else {
		clear(b.o[copy(b.o[:sha256.BlockSize], key):sha256.BlockSize])
	}
	for i := range sha256.BlockSize {
		in[i] = b.o[i] ^ 0x36
		b.o[i] ^= 0x5c
	}
	*(*[sha256Size]byte)(b.o[sha256.BlockSize:]) = sha256.Sum256(in)
	*out = sha256.Sum256(b.o[:])
}

// hkdfExpand writes HKDF-Expand(prk, info, len(out)) (RFC 5869 §2.3) to
// out; len(out) is at most 255·32. buf is the room for HMAC inputs
// (capacity is reused; its contents are not).
func hkdfExpand(out, prk, info, buf []byte, b *hmacBufs) {
	for i := byte(1); len(out) > 0; i++ {
		in := buf[:sha256.BlockSize]
		if i > 1 {
			in = append(in, b.t[:]...)
		}
		in = append(append(in, info...), i)
		hmacSHA256(&b.t, prk, in, b)
		out = out[copy(out, b.t[:]):]
	}
}

// labelRoom bounds the fixed parts of a labeled message: length, version,
// suite_id, the longest label and HKDF-Expand's counter.
const labelRoom = 2 + len(versionID) + 10 + 16 + 1

// labeledExtract is RFC 9180 LabeledExtract(salt, label, ikm) with the
// given suite_id.
func (s *scratch) labeledExtract(out *[sha256Size]byte, id, salt []byte, label string, ikm []byte) {
	if len(ikm) > hmacBuf-labelRoom {
		in := append(append(append(append(s.in[:sha256.BlockSize], versionID...), id...), label...), ikm...)
		hmacSHA256(out, salt, in, &s.hmacBufs)
		return
	}
	// copy at fixed offsets rather than append: a smaller frame.
	in := s.in[:]
	n := sha256.BlockSize + copy(in[sha256.BlockSize:], versionID)
	n += copy(in[n:], id)
	n += copy(in[n:], label)
	n += copy(in[n:], ikm)
	hmacSHA256(out, salt, in[:n], &s.hmacBufs)
}

// labeledExpand writes RFC 9180 LabeledExpand(prk, label, info, len(out))
// with the given suite_id to out. Every secret of the key schedule fits
// one hash block, T(1) = HMAC(prk, labeled_info ‖ 0x01): that case builds
// the message in place, without HKDF-Expand's loop and its frame.
func (s *scratch) labeledExpand(out, prk, id []byte, label string, info []byte) {
	if len(out) > sha256Size || len(info) > hmacBuf-labelRoom {
		s.labeledExpandLong(out, prk, id, label, info)
		return
	}
	in := s.in[:]
	binary.BigEndian.PutUint16(in[sha256.BlockSize:], uint16(len(out)))
	n := sha256.BlockSize + 2 + copy(in[sha256.BlockSize+2:], versionID)
	n += copy(in[n:], id)
	n += copy(in[n:], label)
	n += copy(in[n:], info)
	in[n] = 1
	hmacSHA256(&s.t, prk, in[:n+1], &s.hmacBufs)
	copy(out, s.t[:])
}

// labeledExpandLong is labeledExpand of more than one block or a long info.
//
//go:noinline
func (s *scratch) labeledExpandLong(out, prk, id []byte, label string, info []byte) {
	msg := binary.BigEndian.AppendUint16(make([]byte, 0, labelRoom+len(info)), uint16(len(out)))
	msg = append(append(append(append(msg, versionID...), id...), label...), info...)
	hkdfExpand(out, prk, msg, s.in[:], &s.hmacBufs)
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
	sched schedCache
}

// x25519Encap is DHKEM(X25519, HKDF-SHA256) Encap (RFC 9180 §4.1) with the
// ephemeral secret skE: it writes the encapsulated key to enc and the
// shared secret to s.secret.
func (s *scratch) x25519Encap(enc *[x25519Size]byte, skE *[x25519Size]byte, pkR *x25519Key) error {
	if !pkR.fixed.encap(&s.dh, enc, skE, &pkR.pk) {
		return errLowOrder
	}
	s.extractAndExpand(enc[:], pkR.pk[:])
	return nil
}

// x25519Decap is Decap (RFC 9180 §4.1) of the receiver's secret skR and
// public key pkR; it writes the shared secret to s.secret.
func (s *scratch) x25519Decap(enc []byte, skR, pkR *[x25519Size]byte) error {
	copy(s.kemCtx[:], enc) // pkE, as the ladder wants it
	if !x25519Shared(&s.dh, skR, (*[x25519Size]byte)(s.kemCtx[:x25519Size])) {
		return errLowOrder
	}
	s.extractAndExpand(enc, pkR[:])
	return nil
}

// extractAndExpand is the DHKEM's ExtractAndExpand(s.dh, enc ‖ pkR).
func (s *scratch) extractAndExpand(enc, pkR []byte) {
	s.labeledExtract(&s.prk, kemSuiteID, nil, "eae_prk", s.dh[:])
	copy(s.kemCtx[copy(s.kemCtx[:], enc):], pkR)
	s.labeledExpand(s.secret[:], s.prk[:], kemSuiteID, "shared_secret", s.kemCtx[:])
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
	s        scratch
}

// schedConst is the part of the key schedule that depends only on the
// suite and the info: key_schedule_context = mode ‖ psk_id_hash ‖
// info_hash (RFC 9180 §5.1), two HMACs of the four that every context
// would otherwise compute again.
type schedConst struct {
	suite Suite
	info  string
	ksc   [1 + 2*sha256Size]byte
}

// schedCache keeps a key's last schedConst: a key is used with one suite
// and one info (ODoH's "odoh query", an OHTTP key config's header), so
// one entry serves every message. It is safe for concurrent use.
type schedCache struct{ p atomic.Pointer[schedConst] }

// get returns the schedConst of s and info, computing it when the cache
// holds another one.
func (c *schedCache) get(sc *scratch, s Suite, info []byte) *schedConst {
	if k := c.p.Load(); k != nil && k.suite == s && k.info == string(info) {
		return k
	}
	k := &schedConst{suite: s, info: string(info)}
	id := suiteID(s)
	var pskIDHash, infoHash [sha256Size]byte
	sc.labeledExtract(&pskIDHash, id[:], nil, "psk_id_hash", nil)
	sc.labeledExtract(&infoHash, id[:], nil, "info_hash", info)
	k.ksc[0] = modeBase
	copy(k.ksc[1:], pskIDHash[:])
	copy(k.ksc[1+sha256Size:], infoHash[:])
	c.p.Store(k)
	return k
}

// keySchedule is KeySchedule(mode_base, shared_secret, info, "", "") on
// c, whose scratch holds the shared secret.
func (c *keyContext) keySchedule(s Suite, k *schedConst) error {
	c.id = suiteID(s)
	id, sc := c.id[:], &c.s
	sc.labeledExtract(&sc.prk, id, sc.secret[:], "secret", nil)
	key := sc.key[:s.AEAD.KeySize()]
	sc.labeledExpand(key, sc.prk[:], id, "key", k.ksc[:])
	sc.labeledExpand(c.nonce[:], sc.prk[:], id, "base_nonce", k.ksc[:])
	sc.labeledExpand(c.exporter[:], sc.prk[:], id, "exp", k.ksc[:])
	a, err := NewAEAD(s.AEAD, key)
	if err != nil {
		return err
	}
	c.aead = a
	return nil
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
	c.s.labeledExpand(out, c.exporter[:], c.id[:], "sec", exporterContext)
	return out
}

// newFastSender is SetupBaseS with the ephemeral secret skE (random, or a
// test vector's).
func newFastSender(s Suite, pkR *x25519Key, info []byte, skE *[x25519Size]byte) ([]byte, *keyContext, error) {
	c := new(keyContext)
	enc := new([x25519Size]byte)
	if err := c.s.x25519Encap(enc, skE, pkR); err != nil {
		return nil, nil, err
	}
	if err := c.keySchedule(s, pkR.sched.get(&c.s, s, info)); err != nil {
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
	c := new(keyContext)
	if err := c.s.x25519Decap(enc, &x.sk, &x.pk); err != nil {
		return nil, err
	}
	if err := c.keySchedule(s, x.sched.get(&c.s, s, info)); err != nil {
		return nil, err
	}
	return c, nil
}

// x25519Pair is an X25519 key pair in its serialized form, which the fast
// path works on.
type x25519Pair struct {
	sk, pk [x25519Size]byte
	sched  schedCache
}

package odoh

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"

	"github.com/odohd/odoh/internal/hpke"
)

// QueryContext is what a client keeps of a sealed query to open the
// target's response: the exported secret and the exact query plaintext.
// It is safe for concurrent use.
type QueryContext struct {
	suite  Suite
	secret []byte
	plain  []byte
}

// QueryPadding returns the padding that brings the plaintext of an
// msgLen-byte query to a multiple of block bytes (RFC 8467 §4.1), capped so
// that the query still fits the 16-bit limits of c's suite. SealQuery uses
// it with QueryBlockSize; block <= 0 means no padding.
func (c *Config) QueryPadding(msgLen, block int) int {
	if block <= 0 {
		return 0
	}
	return blockPadding(msgLen, block, maxQueryPlaintext(c.suite))
}

// SealQuery encrypts the DNS message dnsMsg (wire format) to the target's
// config, padding the plaintext to a multiple of [QueryBlockSize] bytes.
// It returns the serialized ObliviousDoHMessage to POST and the context that
// opens the response.
func SealQuery(c *Config, dnsMsg []byte) ([]byte, *QueryContext, error) {
	return SealQueryPadded(c, dnsMsg, c.QueryPadding(len(dnsMsg), QueryBlockSize))
}

// SealQueryPadded is [SealQuery] with an explicit number of padding bytes.
func SealQueryPadded(c *Config, dnsMsg []byte, padding int) ([]byte, *QueryContext, error) {
	if err := checkLengths(dnsMsg, padding, maxQueryPlaintext(c.suite)); err != nil {
		return nil, nil, err
	}
	plain := make([]byte, plaintextLen(len(dnsMsg), padding))
	putPlaintext(plain, dnsMsg, padding)

	// The AAD, type ‖ LP16(key_id), is also the start of the message.
	out := make([]byte, 0, 5+len(c.keyID)+c.suite.KEM.EncSize()+len(plain)+c.suite.AEAD.TagSize())
	out = append(out, byte(MessageTypeQuery))
	out = appendLP16(out, c.keyID)
	enc, ct, secret, err := sealQuery(c.suite, c.pk, out, plain)
	if err != nil {
		return nil, nil, err
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(enc)+len(ct)))
	out = append(append(out, enc...), ct...)
	return out, &QueryContext{suite: c.suite, secret: secret, plain: plain}, nil
}

// checkLengths checks that a DNS message and its padding fit a plaintext.
func checkLengths(dnsMsg []byte, padding, limit int) error {
	if len(dnsMsg) == 0 {
		return malformed("dns message is empty")
	}
	if padding < 0 {
		return malformed("negative padding %d", padding)
	}
	if n := plaintextLen(len(dnsMsg), padding); n > limit {
		return wrap(ErrTooLarge, "%d-byte dns message with %d bytes of padding exceeds the %d-byte plaintext limit", len(dnsMsg), padding, limit)
	}
	return nil
}

// OpenResponse decrypts and checks the target's ObliviousDoHResponse (type,
// resp_nonce length, authentication, zero padding) and returns the DNS
// message.
func (q *QueryContext) OpenResponse(resp []byte) ([]byte, error) {
	m, err := ParseMessage(resp)
	if err != nil {
		return nil, err
	}
	if m.Type != MessageTypeResponse {
		return nil, malformed("message type 0x%02x where a response (0x02) was expected", byte(m.Type))
	}
	if want := q.suite.AEAD.ResponseNonceSize(); len(m.KeyID) != want {
		return nil, malformed("resp_nonce is %d bytes, want %d", len(m.KeyID), want)
	}
	aead, nonce, err := responseAEAD(q.suite, q.secret, q.plain, m.KeyID)
	if err != nil {
		return nil, err
	}
	// AAD = type ‖ LP16(resp_nonce), the first bytes of the response.
	plain, err := aead.Open(nil, nonce, m.Encrypted, resp[:3+len(m.KeyID)])
	if err != nil {
		return nil, wrap(ErrDecrypt, "response: %v", err)
	}
	return parsePlaintext(plain)
}

// Query is a query a target has opened: the client's DNS message and what
// the target needs to seal the response. Use it for one response.
type Query struct {
	// DNS is the client's DNS message in wire format. It aliases the
	// decrypted plaintext; the caller may read it but must not modify it.
	DNS []byte

	suite  Suite
	secret []byte
	plain  []byte
}

// OpenQuery decrypts a query message parsed by [ParseMessage]. A message
// whose key ID is not this key's is an [ErrKeyMismatch] error (HTTP 401);
// every other failure wraps [ErrMalformed] or [ErrDecrypt] (HTTP 400).
func (k *PrivateKey) OpenQuery(m Message) (*Query, error) {
	// The errors are built in other functions so that this frame, deep in
	// a request handler's call chain and above the key schedule's, stays
	// small (see internal/hpke's scratch).
	s := k.config.suite
	if m.Type != MessageTypeQuery || !bytes.Equal(m.KeyID, k.config.keyID) || len(m.Encrypted) < s.KEM.EncSize()+s.AEAD.TagSize() {
		return nil, k.openQueryError(m)
	}
	nenc := s.KEM.EncSize()
	aad := make([]byte, 0, 3+len(m.KeyID))
	aad = append(aad, byte(MessageTypeQuery))
	aad = appendLP16(aad, m.KeyID)
	plain, secret, err := openQuery(s, k.sk, m.Encrypted[:nenc], m.Encrypted[nenc:], aad)
	if err != nil {
		return nil, err
	}
	dns, err := parsePlaintext(plain)
	if err != nil {
		return nil, err
	}
	return &Query{DNS: dns, suite: s, secret: secret, plain: plain}, nil
}

// openQueryError is OpenQuery's error for a message it refuses before
// decrypting.
//
//go:noinline
func (k *PrivateKey) openQueryError(m Message) error {
	switch {
	case m.Type != MessageTypeQuery:
		return malformed("message type 0x%02x where a query (0x01) was expected", byte(m.Type))
	case !bytes.Equal(m.KeyID, k.config.keyID):
		return wrap(ErrKeyMismatch, "key_id %s is not %s", shortHex(m.KeyID), shortHex(k.config.keyID))
	}
	return malformed("encrypted_message is %d bytes, shorter than an encapsulated key and a tag", len(m.Encrypted))
}

// ResponsePadding is QueryPadding for the answer to q: the padding that
// brings an msgLen-byte answer's plaintext to a multiple of block bytes,
// capped by the 16-bit limits; block <= 0 means no padding.
func (q *Query) ResponsePadding(msgLen, block int) int {
	if block <= 0 {
		return 0
	}
	return blockPadding(msgLen, block, maxResponsePlaintext(q.suite))
}

// SealResponse encrypts the DNS answer dnsMsg to the client that sent q,
// padding the plaintext to a multiple of [ResponseBlockSize] bytes (capped
// by the 16-bit limits), and returns the serialized ObliviousDoHResponse.
func (q *Query) SealResponse(dnsMsg []byte) ([]byte, error) {
	return q.SealResponsePadded(dnsMsg, q.ResponsePadding(len(dnsMsg), ResponseBlockSize))
}

// SealResponsePadded is [Query.SealResponse] with an explicit number of
// padding bytes.
func (q *Query) SealResponsePadded(dnsMsg []byte, padding int) ([]byte, error) {
	if err := checkLengths(dnsMsg, padding, maxResponsePlaintext(q.suite)); err != nil {
		return nil, err
	}
	nonce := make([]byte, q.suite.AEAD.ResponseNonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, wrap(ErrUnsupported, "reading resp_nonce: %v", err)
	}
	return sealResponse(q.suite, q.secret, q.plain, nonce, dnsMsg, padding)
}

// sealResponse is SealResponsePadded with a given resp_nonce, which the
// test vectors need to reproduce responses byte for byte.
func sealResponse(s Suite, secret, qPlain, respNonce, dnsMsg []byte, padding int) ([]byte, error) {
	aead, nonce, err := responseAEAD(s, secret, qPlain, respNonce)
	if err != nil {
		return nil, err
	}
	plainLen := plaintextLen(len(dnsMsg), padding)
	hdr := 5 + len(respNonce)
	out := make([]byte, hdr+plainLen, hdr+plainLen+aead.Overhead())
	out[0] = byte(MessageTypeResponse)
	binary.BigEndian.PutUint16(out[1:], uint16(len(respNonce)))
	copy(out[3:], respNonce)
	binary.BigEndian.PutUint16(out[3+len(respNonce):], uint16(plainLen+aead.Overhead()))
	putPlaintext(out[hdr:], dnsMsg, padding)
	// Seal in place: the plaintext is exactly where the ciphertext goes.
	return aead.Seal(out[:hdr], nonce, out[hdr:], out[:3+len(respNonce)]), nil
}

// responseAEAD derives the response key and nonce of RFC 9230 §6.2:
// prk = Extract(Q_plain ‖ LP16(resp_nonce), secret),
// key = Expand(prk, "odoh key", Nk), nonce = Expand(prk, "odoh nonce", Nn).
func responseAEAD(s Suite, secret, qPlain, respNonce []byte) (cipher.AEAD, []byte, error) {
	salt := make([]byte, 0, len(qPlain)+2+len(respNonce))
	salt = append(salt, qPlain...)
	salt = appendLP16(salt, respNonce)
	key, nonce := make([]byte, s.AEAD.KeySize()), make([]byte, s.AEAD.NonceSize())
	hpke.KeyNonce(s.KDF, salt, secret, "odoh key", "odoh nonce", key, nonce)
	a, err := newAEAD(s.AEAD, key)
	if err != nil {
		return nil, nil, err
	}
	return a, nonce, nil
}

// shortHex shows the start of a key ID in errors.
func shortHex(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}

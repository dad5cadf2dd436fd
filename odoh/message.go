package odoh

import (
	"crypto/subtle"
	"encoding/binary"
)

// MessageType distinguishes queries from responses (RFC 9230 §6.1).
type MessageType uint8

// Message types.
const (
	MessageTypeQuery    MessageType = 0x01
	MessageTypeResponse MessageType = 0x02
)

// Padding block sizes of RFC 8467 §4.1, applied to the ODoH plaintext.
const (
	QueryBlockSize    = 128
	ResponseBlockSize = 468
)

// Message is an ObliviousDoHMessage: a type, a key ID (a response's
// resp_nonce) and the encrypted message. Parsed messages alias the input.
type Message struct {
	Type      MessageType
	KeyID     []byte
	Encrypted []byte
}

// ParseMessage parses an ObliviousDoHMessage strictly: known type, exact
// lengths, a non-empty encrypted_message, no trailing bytes. The returned
// slices alias b.
func ParseMessage(b []byte) (Message, error) {
	if len(b) < 1 {
		return Message{}, malformed("message is empty")
	}
	m := Message{Type: MessageType(b[0])}
	if m.Type != MessageTypeQuery && m.Type != MessageTypeResponse {
		return Message{}, malformed("unknown message type 0x%02x", b[0])
	}
	var ok bool
	var rest []byte
	if m.KeyID, rest, ok = readLP16(b[1:]); !ok {
		return Message{}, malformed("key_id length exceeds the message")
	}
	if m.Encrypted, rest, ok = readLP16(rest); !ok {
		return Message{}, malformed("encrypted_message length exceeds the message")
	}
	if len(m.Encrypted) == 0 {
		return Message{}, malformed("encrypted_message is empty")
	}
	if len(rest) != 0 {
		return Message{}, malformed("message has %d trailing bytes", len(rest))
	}
	return m, nil
}

// AppendBinary appends the serialized message to b.
func (m Message) AppendBinary(b []byte) ([]byte, error) {
	if len(m.KeyID) > maxLen16 || len(m.Encrypted) > maxLen16 {
		return nil, wrap(ErrTooLarge, "message field over %d bytes", maxLen16)
	}
	b = append(b, byte(m.Type))
	b = appendLP16(b, m.KeyID)
	return appendLP16(b, m.Encrypted), nil
}

// MarshalBinary returns the serialized message.
func (m Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 5+len(m.KeyID)+len(m.Encrypted)))
}

// plaintextLen is the length of an ObliviousDoHMessagePlaintext.
func plaintextLen(msgLen, padding int) int { return 4 + msgLen + padding }

// putPlaintext writes LP16(msg) ‖ LP16(zeros(padding)) into dst, which has
// exactly plaintextLen bytes; it writes the padding zeros too, so dst may be
// a reused buffer.
func putPlaintext(dst, msg []byte, padding int) {
	binary.BigEndian.PutUint16(dst, uint16(len(msg)))
	n := 2 + copy(dst[2:], msg)
	binary.BigEndian.PutUint16(dst[n:], uint16(padding))
	clear(dst[n+2:])
}

// parsePlaintext parses an ObliviousDoHMessagePlaintext and returns its
// dns_message (aliasing b). Padding must be all zeros, checked in constant
// time so that timing does not tell where a non-zero byte is.
func parsePlaintext(b []byte) ([]byte, error) {
	msg, rest, ok := readLP16(b)
	if !ok {
		return nil, malformed("plaintext dns_message length exceeds the plaintext")
	}
	if len(msg) == 0 {
		return nil, malformed("plaintext dns_message is empty")
	}
	pad, rest, ok := readLP16(rest)
	if !ok {
		return nil, malformed("plaintext padding length exceeds the plaintext")
	}
	if len(rest) != 0 {
		return nil, malformed("plaintext has %d trailing bytes", len(rest))
	}
	var acc byte
	for _, c := range pad {
		acc |= c
	}
	if subtle.ConstantTimeByteEq(acc, 0) != 1 {
		return nil, malformed("plaintext padding is not all zeros")
	}
	return msg, nil
}

// blockPadding returns the padding that brings a plaintext carrying an
// msgLen-byte message to the next multiple of block, without exceeding
// limit bytes of plaintext (RFC 8467 §4.1 block-length padding).
func blockPadding(msgLen, block, limit int) int {
	n := plaintextLen(msgLen, 0)
	padded := (n + block - 1) / block * block
	padded = min(padded, limit)
	return max(padded-n, 0)
}

package odoh

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package, and by package
// ohttp, wraps exactly one of them; test with [errors.Is].
var (
	// ErrMalformed: the input does not follow the wire format (lengths,
	// trailing bytes, message type, non-zero padding). Targets answer 400.
	ErrMalformed = errors.New("malformed")
	// ErrKeyMismatch: the query was encrypted to a key the target does not
	// hold (RFC 9230 §4.3, §8). Targets answer 401; clients refetch configs.
	// (An OHTTP gateway answers its "ohttp-key" problem, RFC 9458 §5.3.)
	ErrKeyMismatch = errors.New("key mismatch")
	// ErrDecrypt: HPKE decapsulation or AEAD authentication failed. Targets
	// answer 400.
	ErrDecrypt = errors.New("decryption failed")
	// ErrEncrypt: HPKE setup or sealing failed on the sending side (an
	// internal error, such as a failing random source).
	ErrEncrypt = errors.New("encryption failed")
	// ErrUnsupported: a suite, version or key length this package does not
	// implement, or a configs list with no usable entry.
	ErrUnsupported = errors.New("unsupported")
	// ErrTooLarge: a message that would not fit the 16-bit length fields.
	ErrTooLarge = errors.New("too large")
)

// wrap formats an error as "odoh: <sentinel>: <details>".
func wrap(sentinel error, format string, args ...any) error {
	return fmt.Errorf("odoh: %w: %s", sentinel, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return wrap(ErrMalformed, format, args...)
}

package ohttp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one
// of them; test with [errors.Is].
var (
	// ErrMalformed: the input does not follow the wire format (lengths,
	// trailing bytes, framing). A gateway answers 400.
	ErrMalformed = errors.New("malformed")
	// ErrKeyMismatch: the request names a key ID, KEM or symmetric
	// algorithms the gateway's key does not have (RFC 9458 §4.3): the
	// client's key configuration is outdated or wrong. A gateway answers
	// with the "ohttp-key" problem (§5.3); the client refetches.
	ErrKeyMismatch = errors.New("key configuration not acceptable")
	// ErrDecrypt: HPKE decapsulation or AEAD authentication failed. A
	// gateway answers 400.
	ErrDecrypt = errors.New("decryption failed")
	// ErrEncrypt: HPKE setup or sealing failed on the sending side (an
	// internal error, such as a failing random source).
	ErrEncrypt = errors.New("encryption failed")
	// ErrUnsupported: a KEM, KDF or AEAD this package does not implement,
	// or a configurations list with no usable entry.
	ErrUnsupported = errors.New("unsupported")
)

// wrap formats an error as "ohttp: <sentinel>: <details>".
func wrap(sentinel error, format string, args ...any) error {
	return fmt.Errorf("ohttp: %w: %s", sentinel, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return wrap(ErrMalformed, format, args...)
}

func isUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }

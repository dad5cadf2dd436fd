package bhttp

import (
	"errors"
	"fmt"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrMalformed: the message is invalid (RFC 9292 §4), or a message to
	// encode could not be represented validly.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: the message exceeds one of the parser's [Limits].
	ErrTooLarge = errors.New("too large")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("bhttp: %w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("bhttp: %w: %s", ErrTooLarge, fmt.Sprintf(format, args...))
}

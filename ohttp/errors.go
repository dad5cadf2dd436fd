package ohttp

import (
	"errors"
	"fmt"

	"github.com/odohd/odoh/odoh"
)

// wrap formats an error as "ohttp: <sentinel>: <details>".
func wrap(sentinel error, format string, args ...any) error {
	return fmt.Errorf("ohttp: %w: %s", sentinel, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return wrap(odoh.ErrMalformed, format, args...)
}

func isUnsupported(err error) bool { return errors.Is(err, odoh.ErrUnsupported) }

package client

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is. Response defects also wrap the
// odoh package's sentinel (odoh.ErrMalformed, odoh.ErrDecrypt, …).
var (
	// ErrNoProxy: the client was given no proxy and not told to talk to
	// targets directly (Options.Direct), which would reveal the client's
	// address to the target together with its queries.
	ErrNoProxy = errors.New("no proxy configured: set a proxy, or Direct to query the target without one (the target then sees your address)")
	// ErrSameOperator: a proxy and a target share a registrable domain, so
	// one operator would see both who asks and what (RFC 9230 §11).
	ErrSameOperator = errors.New("proxy and target have the same registrable domain")
	// ErrRedirect: a proxy or target answered with a redirect, which the
	// client never follows (RFC 9230 §4.3, checklist C13).
	ErrRedirect = errors.New("redirect not followed")
	// ErrBadResponse: a 200 response that is not a valid ODoH answer to the
	// query (content type, framing, type byte, nonce length, decryption,
	// padding: checklist C9–C11).
	ErrBadResponse = errors.New("bad odoh response")
	// ErrKeyMismatch: the target answered 401 even after the client fetched
	// its configs again, or, with ConfigFromTarget and a proxy, before a
	// background fetch brought newer configs.
	ErrKeyMismatch = errors.New("target key mismatch after config refresh")
	// ErrPinMismatch: no certificate in a relay's verified chain matches
	// the certificate hashes of its stamp.
	ErrPinMismatch = errors.New("no certificate in the verified chain matches the relay stamp's pinned hashes")
	// ErrConfig: the target's configs could not be obtained or used.
	ErrConfig = errors.New("target configs unavailable")
)

// HTTPError is a non-200 answer from a proxy or a target.
type HTTPError struct {
	// URL is the URL the query was posted to (the expanded proxy URL, or
	// the target URL in direct mode).
	URL string
	// StatusCode is the HTTP status received.
	StatusCode int
	// ProxyStatus is the Proxy-Status header, if any (RFC 9209).
	ProxyStatus string
	// Err is ErrRedirect for 3xx, ErrKeyMismatch for a final 401, and nil
	// otherwise.
	Err error
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s answered HTTP %d", e.URL, e.StatusCode)
	if e.ProxyStatus != "" {
		s += " (Proxy-Status: " + e.ProxyStatus + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *HTTPError) Unwrap() error { return e.Err }

package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/odohd/odoh/odoh"
)

// Sentinel errors; test with errors.Is. Response defects also wrap the
// odoh package's sentinels (odoh.ErrMalformed, odoh.ErrDecrypt, …), and a
// target that still answers 401 after the client fetched its configs
// again wraps odoh.ErrKeyMismatch.
var (
	// ErrNoProxy: the client was given no proxy and not told to talk to
	// targets directly (Config.Direct), which would show the target the
	// client's address together with its queries.
	ErrNoProxy = errors.New("no proxy configured")
	// ErrSameOperator: a proxy and a target share a registrable domain (or
	// an IP address), so one operator would see both who asks and what
	// (RFC 9230 §11). Config.AllowSameOperator lifts the rule for tests.
	ErrSameOperator = errors.New("they look like one operator's, who would see both who asks and what")
	// ErrRedirect: a proxy or target answered with a redirect, which the
	// client never follows (RFC 9230 §4.3).
	ErrRedirect = errors.New("redirect not followed")
	// ErrBadResponse: a 200 response that is not a valid ODoH answer to the
	// query (content type, framing, type byte, nonce length, decryption,
	// padding: RFC 9230 §4.3, §7).
	ErrBadResponse = errors.New("bad odoh response")
	// ErrConfig: the target's configs could not be obtained or used. The
	// errors below, about configs that were obtained but refused, wrap it.
	ErrConfig = errors.New("target configs unavailable")
	// ErrPinMismatch: a server's certificate chain or a target's configs
	// do not match the pins given for it (Config.Pins, stamp hashes).
	ErrPinMismatch = errors.New("no match for the pins")
	// ErrNoTunnel: a proxy does not offer the configs tunnel (it refused
	// CONNECT as a server that does not know the method does), so configs
	// cannot be fetched through it in a way the proxy cannot forge. See
	// ConfigViaTunnel for the other sources.
	ErrNoTunnel = errors.New("proxy offers no configs tunnel")
	// ErrInconsistentConfigs: the configs a target published through the
	// tunnel share no config with those the proxy's relay holds for every
	// client, nor with those the client found in both before. The target
	// may be giving this client a key of its own, which would let it link
	// the client's queries; or its keys just rotated and the relay lags,
	// for a few seconds. The client refuses both sets until they agree.
	// See ConfigViaTunnel.
	ErrInconsistentConfigs = errors.New("configs from the tunnel and from the proxy's relay differ")
)

// HTTPError is a non-200 answer from a proxy or a target.
type HTTPError struct {
	// URL is the URL the request went to, without its query (the expanded
	// proxy URL, or the target URL in direct mode).
	URL string
	// StatusCode is the HTTP status received.
	StatusCode int
	// ProxyStatus is the Proxy-Status field (RFC 9209), its field lines
	// joined with ", " (RFC 9110 §5.3), or "". odoh.ParseProxyStatus reads
	// it; the last member is the intermediary closest to the client.
	ProxyStatus string
	// Err is ErrRedirect for 3xx, odoh.ErrKeyMismatch for a final 401,
	// ErrNoTunnel for a CONNECT the proxy does not know, and nil
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

// Reason is a short, stable name for why an exchange failed. It carries no
// name, address or URL, so that a stub or a metric may record it.
type Reason string

// The reasons Classify returns.
const (
	ReasonTimeout        Reason = "timeout"         // the exchange's deadline passed
	ReasonCanceled       Reason = "canceled"        // the caller gave up
	ReasonQuery          Reason = "bad_query"       // the query cannot be sent (too short, too large)
	ReasonNoTunnel       Reason = "no_tunnel"       // a proxy offers no configs tunnel
	ReasonConfigsRefused Reason = "configs_refused" // configs failed a pin or the consistency check
	ReasonConfigs        Reason = "configs"         // configs could not be fetched or parsed
	ReasonKeyRejected    Reason = "key_rejected"    // the target refused its own fresh configs (401)
	ReasonPinMismatch    Reason = "pin_mismatch"    // a proxy's certificate chain failed its pins
	ReasonRedirect       Reason = "redirect"        // a redirect, never followed
	ReasonHTTPStatus     Reason = "http_status"     // a proxy or target answered another status
	ReasonBadResponse    Reason = "bad_response"    // a 200 that is no valid answer
	ReasonTransport      Reason = "transport"       // connecting, TLS, or the stream failed
)

// Classify returns the Reason of an error returned by Exchange or Do.
func Classify(err error) Reason {
	var he *HTTPError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, context.Canceled):
		return ReasonCanceled
	case errors.Is(err, errShortQuery), errors.Is(err, odoh.ErrTooLarge):
		return ReasonQuery
	case errors.Is(err, ErrNoTunnel):
		return ReasonNoTunnel
	case errors.Is(err, ErrConfig) && (errors.Is(err, ErrPinMismatch) || errors.Is(err, ErrInconsistentConfigs)):
		return ReasonConfigsRefused
	case errors.Is(err, ErrConfig):
		return ReasonConfigs
	case errors.Is(err, ErrPinMismatch):
		return ReasonPinMismatch
	case errors.Is(err, odoh.ErrKeyMismatch):
		return ReasonKeyRejected
	case errors.Is(err, ErrRedirect):
		return ReasonRedirect
	case errors.As(err, &he):
		return ReasonHTTPStatus
	case errors.Is(err, ErrBadResponse):
		return ReasonBadResponse
	}
	return ReasonTransport
}

var errShortQuery = errors.New("query shorter than a DNS header")

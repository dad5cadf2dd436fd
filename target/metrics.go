package target

import "time"

// Metrics receives what a Handler reports; nil reports nothing.
// Implementations are called on the hot path and must be cheap and safe for
// concurrent use; internal/metrics has the Prometheus one. Every label value
// comes from a fixed set: no addresses, no names.
type Metrics interface {
	// Request reports one DNS request: its protocol ("odoh", "doh" or
	// "ohttp", DoH through the Oblivious HTTP gateway),
	// HTTP transport ("h1", "h2" or "h3"), result and the time from
	// reading it to writing its answer. The result is "ok" (answered,
	// whatever the DNS rcode), "servfail" (resolution failed: SERVFAIL in
	// a 200), "bad_request" (400), "key_mismatch" (401; for OHTTP, the 400 of an
	// unknown key),
	// "method_not_allowed" (405), "unsupported_media_type" (415),
	// "too_large" (413) or "internal_error" (500).
	Request(protocol, transport, result string, d time.Duration)
}

// UpstreamMetrics receives what Upstreams report; nil reports nothing.
// i is the upstream's index in the configured list, never its address.
type UpstreamMetrics interface {
	// UpstreamExchange reports one exchange with upstream i and whether
	// it failed (an error or a timeout).
	UpstreamExchange(i int, d time.Duration, failed bool)
	// UpstreamUp reports whether upstream i is up, or down for a backoff.
	UpstreamUp(i int, up bool)
	// UpstreamMismatch reports an answer from upstream i dropped because
	// its ID or question was not the query's (late or forged).
	UpstreamMismatch(i int)
}

// The label values of Metrics.Request, by protocol, transport and result.
var (
	protoNames     = [...]string{"odoh", "doh", "ohttp"}
	transportNames = [...]string{"h1", "h2", "h3"}
	resultNames    = [...]string{"ok", "servfail", "bad_request", "key_mismatch",
		"method_not_allowed", "unsupported_media_type", "too_large", "internal_error"}
)

const (
	protoODoH = iota
	protoDoH
	protoOHTTP
)

const (
	transportH1 = iota
	transportH2
	transportH3
)

// result indexes resultNames: the outcome of one request.
type result int

const (
	resOK               result = iota // answered (any DNS rcode from the resolver)
	resServFail                       // resolution failed: SERVFAIL in a 200
	resBadRequest                     // 400: malformed, undecryptable, unparsable
	resKeyMismatch                    // 401 (ODoH), 400 ohttp-key problem (OHTTP): unknown key ID
	resMethodNotAllowed               // 405
	resUnsupportedMedia               // 415
	resTooLarge                       // 413
	resInternalError                  // 500
)

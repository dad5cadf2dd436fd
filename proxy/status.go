package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/odoh"
)

// failure is a request the proxy answers itself, with an error status and
// a Proxy-Status error type. Every stage of a request returns one (or
// errClientGone) when the request cannot go on, and answerError, the one
// place that writes them, turns it into the response.
type failure struct {
	status   int // 4xx or 5xx
	kind     odoh.ProxyError
	details  string   // the Proxy-Status details, for people; "" for none
	received int      // the target's status, when its response was at fault
	allow    []string // the Allow header of a 405
	err      error    // the cause, if any (logs, errors.Is)
}

func (f *failure) Error() string {
	s := string(f.kind)
	if f.details != "" {
		s += ": " + f.details
	}
	if f.err != nil {
		s += ": " + f.err.Error()
	}
	return s
}

func (f *failure) Unwrap() error { return f.err }

// result is the request's label of odoh_proxy_requests_total: by status,
// which the stages choose to say just that.
func (f *failure) result() result {
	switch f.status {
	case http.StatusForbidden:
		return resDenied
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return resRateLimited
	case http.StatusGatewayTimeout:
		return resUpstreamTimeout
	}
	if f.status >= 500 {
		return resUpstreamError
	}
	return resBadRequest
}

// requestError is a 4xx refusal of a malformed request.
func requestError(status int, details string) *failure {
	return &failure{status: status, kind: odoh.ProxyHTTPRequestError, details: details}
}

// denied is a refusal for capacity: 429 or 503, with Retry-After.
func denied(status int, details string) *failure {
	return &failure{status: status, kind: odoh.ProxyHTTPRequestDenied, details: details}
}

// The refusals that carry nothing of the request; they are never mutated.
var (
	errMethodNotPost  = &failure{status: http.StatusMethodNotAllowed, kind: odoh.ProxyHTTPRequestError, details: "method not allowed", allow: allowPost}
	errMethodNotGet   = &failure{status: http.StatusMethodNotAllowed, kind: odoh.ProxyHTTPRequestError, details: "method not allowed", allow: allowGet}
	errNotODoH        = requestError(http.StatusUnsupportedMediaType, "content type must be "+odoh.ContentType)
	errBodyTooLarge   = requestError(http.StatusRequestEntityTooLarge, "body too large")
	errBodyTimeout    = requestError(http.StatusRequestTimeout, "body read timeout")
	errBodyRead       = requestError(http.StatusBadRequest, "reading body failed")
	errEmptyBody      = requestError(http.StatusBadRequest, "empty body")
	errBadTargetHost  = requestError(http.StatusBadRequest, "malformed targethost")
	errBadTargetPath  = requestError(http.StatusBadRequest, "malformed targetpath")
	errClientRate     = denied(http.StatusTooManyRequests, "client rate limit")
	errClientSlots    = denied(http.StatusTooManyRequests, "too many concurrent requests from this client")
	errConcurrency    = denied(http.StatusTooManyRequests, "too many concurrent requests")
	errConfigsBusy    = denied(http.StatusServiceUnavailable, "too many configs fetches in progress")
	errClientDeadline = &failure{status: http.StatusGatewayTimeout, kind: odoh.ProxyHTTPResponseTimeout}
)

// errClientGone ends a request whose client went away before its answer:
// there is nobody to answer, and the target did nothing wrong.
var errClientGone = errors.New("client went away")

// answerError answers a request that one of its stages ended with err: the
// status, Allow (405) or Retry-After (429, 503), Cache-Control: no-store,
// Proxy-Status naming the error type, a short text body, and the metrics.
func (h *Handler) answerError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errClientGone) {
		h.count(resClientClosed)
		return
	}
	f := h.writeFailure(w, r, err)
	h.count(f.result())
}

// writeFailure writes the response to a stage's error (not errClientGone)
// and returns the failure it wrote; the caller counts it. A refusal for
// capacity also counts against the connection's reset budget.
func (h *Handler) writeFailure(w http.ResponseWriter, r *http.Request, err error) *failure {
	f, ok := errors.AsType[*failure](err)
	if !ok {
		// A stage returned what it should have classified: a bug, which
		// still gets an answer.
		f = &failure{status: http.StatusInternalServerError, kind: odoh.ProxyInternalError, err: err}
	}
	hdr := w.Header()
	switch f.status {
	case http.StatusMethodNotAllowed:
		hdr["Allow"] = f.allow
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		httpserve.CountRefused(r)
		hdr["Retry-After"] = retryAfter
		h.metrics.RateLimited()
	}
	hdr["Proxy-Status"] = []string{h.status.errorValue(f.kind, f.details, f.received)}
	writeError(w, f.status)
	h.logFailure(targetOf(err), f)
	return f
}

// writeError writes an error status with a short text body that no browser
// sniffs into anything else.
func writeError(w http.ResponseWriter, status int) {
	hdr := w.Header()
	hdr["Cache-Control"] = noStore
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status)+"\n")
}

// dialError carries the classification the dialer made, so that a failure
// deep inside the transport still names its cause.
type dialError struct {
	kind odoh.ProxyError
	err  error
}

func (e *dialError) Error() string { return string(e.kind) + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// classify maps an error from the upstream round trip (or from reading the
// response body) to a status and a Proxy-Status error type.
func classify(ctx context.Context, err error) *failure {
	if f, ok := errors.AsType[*failure](err); ok {
		return f
	}
	var de *dialError
	if errors.As(err, &de) {
		status := http.StatusBadGateway
		if de.kind == odoh.ProxyDestinationIPProhibited {
			status = http.StatusForbidden
		}
		return &failure{status: status, kind: de.kind, err: err}
	}
	// The response deadline ran out: whatever was in progress, the target
	// was too slow.
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), errResponseDeadline) {
		return &failure{status: http.StatusGatewayTimeout, kind: odoh.ProxyHTTPResponseTimeout, err: err}
	}
	return &failure{status: http.StatusBadGateway, kind: classifyNet(err), err: err}
}

// errResponseDeadline is the cause of the per-request upstream deadline.
var errResponseDeadline = errors.New("proxy: target response timeout")

// classifyNet names the cause of a dial, TLS or transfer error.
func classifyNet(err error) odoh.ProxyError {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var recErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return odoh.ProxyDNSTimeout
		}
		return odoh.ProxyDNSError
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		return odoh.ProxyTLSCertificateError
	case errors.As(err, &alert), errors.As(err, &recErr):
		return odoh.ProxyTLSProtocolError
	case errors.Is(err, syscall.ECONNREFUSED):
		return odoh.ProxyConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return odoh.ProxyConnectionTerminated
	case errors.As(err, &netErr) && netErr.Timeout():
		return odoh.ProxyConnectionTimeout
	case strings.Contains(err.Error(), "tls:"):
		return odoh.ProxyTLSProtocolError
	}
	return odoh.ProxyDestinationUnavailable
}

// statusHeaders pre-renders the Proxy-Status values of the hot path so that
// forwarding a response allocates no header strings. The slices are shared
// by all responses and never mutated (net/http only reads them).
type statusHeaders struct {
	name     string
	received [600][]string // received-status=N for N in 100..599
}

func newStatusHeaders(name string) *statusHeaders {
	s := &statusHeaders{name: name}
	for code := 100; code < 600; code++ {
		s.received[code] = []string{odoh.ProxyStatus{Name: name, ReceivedStatus: code}.String()}
	}
	return s
}

func (s *statusHeaders) receivedStatus(code int) []string {
	if code >= 100 && code < 600 {
		return s.received[code]
	}
	return []string{odoh.ProxyStatus{Name: s.name, ReceivedStatus: code}.String()}
}

// errorValue renders "NAME; error=KIND[; received-status=N][; details=...]".
func (s *statusHeaders) errorValue(kind odoh.ProxyError, details string, received int) string {
	return odoh.ProxyStatus{Name: s.name, Error: kind, ReceivedStatus: received, Details: details}.String()
}

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

	"github.com/odohd/odoh/odoh"
)

// upstreamError is a failure to get a response from a target, classified
// for Proxy-Status.
type upstreamError struct {
	status int // 403, 502 or 504
	kind   odoh.ProxyError
	err    error
}

func (e *upstreamError) Error() string { return string(e.kind) + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

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
func classify(ctx context.Context, err error) *upstreamError {
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue
	}
	var de *dialError
	if errors.As(err, &de) {
		status := http.StatusBadGateway
		if de.kind == odoh.ProxyDestinationIPProhibited {
			status = http.StatusForbidden
		}
		return &upstreamError{status, de.kind, err}
	}
	// The response deadline ran out: whatever was in progress, the target
	// was too slow.
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), errResponseDeadline) {
		return &upstreamError{http.StatusGatewayTimeout, odoh.ProxyHTTPResponseTimeout, err}
	}
	return &upstreamError{http.StatusBadGateway, classifyNet(err), err}
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

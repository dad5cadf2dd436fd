package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
)

// Proxy-Status error types (RFC 9209 §2.3) that the proxy emits.
const (
	errRequestError     = "http_request_error"
	errRequestDenied    = "http_request_denied"
	errIPProhibited     = "destination_ip_prohibited"
	errDNSTimeout       = "dns_timeout"
	errDNSError         = "dns_error"
	errConnRefused      = "connection_refused"
	errConnTimeout      = "connection_timeout"
	errConnTerminated   = "connection_terminated"
	errDestUnavailable  = "destination_unavailable"
	errTLSProtocol      = "tls_protocol_error"
	errTLSCertificate   = "tls_certificate_error"
	errResponseTimeout  = "http_response_timeout"
	errResponseBodySize = "http_response_body_size"
	errProtocol         = "http_protocol_error"
)

// upstreamError is a failure to get a response from a target, classified
// for Proxy-Status.
type upstreamError struct {
	status int    // 403, 502 or 504
	kind   string // Proxy-Status error type
	err    error
}

func (e *upstreamError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// dialError carries the classification the dialer made, so that a failure
// deep inside the transport still names its cause.
type dialError struct {
	kind string
	err  error
}

func (e *dialError) Error() string { return e.kind + ": " + e.err.Error() }
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
		if de.kind == errIPProhibited {
			status = http.StatusForbidden
		}
		return &upstreamError{status, de.kind, err}
	}
	// The response deadline ran out: whatever was in progress, the target
	// was too slow.
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), errResponseDeadline) {
		return &upstreamError{http.StatusGatewayTimeout, errResponseTimeout, err}
	}
	return &upstreamError{http.StatusBadGateway, classifyNet(err), err}
}

// errResponseDeadline is the cause of the per-request upstream deadline.
var errResponseDeadline = errors.New("proxy: target response timeout")

// classifyNet names the cause of a dial, TLS or transfer error.
func classifyNet(err error) string {
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
			return errDNSTimeout
		}
		return errDNSError
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		return errTLSCertificate
	case errors.As(err, &alert), errors.As(err, &recErr):
		return errTLSProtocol
	case errors.Is(err, syscall.ECONNREFUSED):
		return errConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errConnTerminated
	case errors.As(err, &netErr) && netErr.Timeout():
		return errConnTimeout
	case strings.Contains(err.Error(), "tls:"):
		return errTLSProtocol
	}
	return errDestUnavailable
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
		s.received[code] = []string{name + "; received-status=" + strconv.Itoa(code)}
	}
	return s
}

func (s *statusHeaders) receivedStatus(code int) []string {
	if code >= 100 && code < 600 {
		return s.received[code]
	}
	return []string{s.name + "; received-status=" + strconv.Itoa(code)}
}

// errorValue renders "NAME; error=KIND; details=\"...\"".
func (s *statusHeaders) errorValue(kind, details string, received int) string {
	var b strings.Builder
	b.WriteString(s.name)
	b.WriteString("; error=")
	b.WriteString(kind)
	if received > 0 {
		b.WriteString("; received-status=")
		b.WriteString(strconv.Itoa(received))
	}
	if details != "" {
		b.WriteString("; details=")
		b.WriteString(quoteSF(details))
	}
	return b.String()
}

// quoteSF renders s as an RFC 8941 sf-string, replacing what it cannot
// carry (non-printable or non-ASCII bytes) with '?'.
func quoteSF(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// validToken reports whether name is an RFC 8941 token usable as the
// Proxy-Status member name.
func validToken(name string) bool {
	if name == "" {
		return false
	}
	c := name[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`"(),;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

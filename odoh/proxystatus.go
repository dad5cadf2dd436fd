package odoh

import (
	"math"
	"strconv"
	"strings"
)

// ProxyError is a Proxy-Status error type (RFC 9209 §2.3): what an
// intermediary says went wrong. A proxy writes one of the constants below;
// a client parses any registered or unknown type with [ParseProxyStatus].
type ProxyError string

// The Proxy-Status error types the proxy writes (RFC 9209 §2.3).
const (
	ProxyDNSTimeout              ProxyError = "dns_timeout"               // §2.3.1
	ProxyDNSError                ProxyError = "dns_error"                 // §2.3.2
	ProxyDestinationUnavailable  ProxyError = "destination_unavailable"   // §2.3.4
	ProxyDestinationIPProhibited ProxyError = "destination_ip_prohibited" // §2.3.5
	ProxyConnectionRefused       ProxyError = "connection_refused"        // §2.3.7
	ProxyConnectionTerminated    ProxyError = "connection_terminated"     // §2.3.8
	ProxyConnectionTimeout       ProxyError = "connection_timeout"        // §2.3.9
	ProxyTLSProtocolError        ProxyError = "tls_protocol_error"        // §2.3.13
	ProxyTLSCertificateError     ProxyError = "tls_certificate_error"     // §2.3.14
	ProxyHTTPRequestError        ProxyError = "http_request_error"        // §2.3.16
	ProxyHTTPRequestDenied       ProxyError = "http_request_denied"       // §2.3.17
	ProxyHTTPResponseBodySize    ProxyError = "http_response_body_size"   // §2.3.21
	ProxyHTTPResponseTimeout     ProxyError = "http_response_timeout"     // §2.3.26
	ProxyHTTPProtocolError       ProxyError = "http_protocol_error"       // §2.3.28
	ProxyInternalError           ProxyError = "proxy_internal_error"      // §2.3.30
)

// nextHopErrors are the error types of RFC 9209 §2.3 that concern the next
// hop (resolving, reaching, or the response of the target) rather than the
// request or the intermediary itself.
var nextHopErrors = map[ProxyError]bool{
	"dns_timeout": true, "dns_error": true,
	"destination_not_found": true, "destination_unavailable": true,
	"destination_ip_prohibited": true, "destination_ip_unroutable": true,
	"connection_refused": true, "connection_terminated": true, "connection_timeout": true,
	"connection_read_timeout": true, "connection_write_timeout": true,
	"tls_protocol_error": true, "tls_certificate_error": true, "tls_alert_received": true,
	"http_response_incomplete": true, "http_response_header_section_size": true,
	"http_response_header_size": true, "http_response_body_size": true,
	"http_response_trailer_section_size": true, "http_response_trailer_size": true,
	"http_response_transfer_coding": true, "http_response_content_coding": true,
	"http_response_timeout": true, "http_upgrade_failed": true, "http_protocol_error": true,
}

// NextHop reports whether e concerns the next hop (the target): its name,
// its address, the connection to it or its response. Request errors
// (http_request_*), the intermediary's own failures (proxy_*) and its
// limits (connection_limit_reached) do not, nor does an unknown type.
func (e ProxyError) NextHop() bool { return nextHopErrors[e] }

// ProxyStatus is one member of a Proxy-Status field (RFC 9209 §2): the
// intermediary's name and the parameters this project reads and writes.
type ProxyStatus struct {
	// Name identifies the intermediary (rendered as an sf-token when it is
	// one, else as an sf-string).
	Name string
	// Error is the error parameter; empty when the member has none.
	Error ProxyError
	// ReceivedStatus is the received-status parameter: the status the
	// intermediary got from the next hop; 0 when absent (a value that is
	// not positive, or beyond an sf-integer, is neither rendered nor
	// parsed).
	ReceivedStatus int
	// Details is the details parameter, free text for people.
	Details string
}

// NextHopFault reports whether the member puts a failure on the next hop:
// it relayed the next hop's own status, or its error concerns the next hop.
func (p ProxyStatus) NextHopFault() bool {
	return p.ReceivedStatus > 0 || p.Error.NextHop()
}

// String renders the member, as in
// `odoh-proxy; error=dns_timeout; details="lookup failed"`. A Details
// byte that an sf-string cannot carry (control or non-ASCII) becomes '?'.
func (p ProxyStatus) String() string {
	var b strings.Builder
	if IsProxyName(p.Name) {
		b.WriteString(p.Name)
	} else {
		writeSFString(&b, p.Name)
	}
	if p.Error != "" {
		b.WriteString("; error=")
		b.WriteString(string(p.Error))
	}
	if n := int64(p.ReceivedStatus); n > 0 && n <= maxSFInteger {
		b.WriteString("; received-status=")
		b.WriteString(strconv.Itoa(p.ReceivedStatus))
	}
	if p.Details != "" {
		b.WriteString("; details=")
		writeSFString(&b, p.Details)
	}
	return b.String()
}

// IsProxyName reports whether name is an RFC 8941 §3.3.4 sf-token, the
// form a proxy's Proxy-Status name takes.
func IsProxyName(name string) bool {
	if name == "" {
		return false
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*') {
		return false
	}
	for i := 1; i < len(name); i++ {
		if c := name[i]; !isTchar(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

// writeSFString renders s as an RFC 8941 sf-string.
func writeSFString(b *strings.Builder, s string) {
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
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
}

// ParseProxyStatus parses a Proxy-Status field value (RFC 9209 §2): an
// RFC 8941 List whose members are sf-tokens or sf-strings with parameters.
// Several field lines are joined with ", " first (RFC 9110 §5.3). The
// members come in the order the intermediaries added them: the last one is
// the intermediary closest to the client. Parameters other than error,
// received-status and details, and those of another type than RFC 9209
// gives them, are skipped. A value that is no valid List is an error
// wrapping [ErrMalformed], and should be ignored whole (RFC 8941 §4.2).
func ParseProxyStatus(field string) ([]ProxyStatus, error) {
	p := sfParser{s: strings.Trim(field, " ")}
	var out []ProxyStatus
	for p.s != "" {
		m, err := p.member()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		p.skipOWS()
		if p.s == "" {
			break
		}
		if p.s[0] != ',' {
			return nil, p.fail("expected ',' after a member")
		}
		p.s = p.s[1:]
		p.skipOWS()
		if p.s == "" {
			return nil, p.fail("trailing ','")
		}
	}
	return out, nil
}

// sfParser parses the RFC 8941 §4.2 subset Proxy-Status uses.
type sfParser struct{ s string }

func (p *sfParser) fail(msg string) error {
	return wrap(ErrMalformed, "Proxy-Status: %s", msg)
}

func (p *sfParser) skipOWS() { p.s = strings.TrimLeft(p.s, " \t") }

// member parses sf-item: (sf-token / sf-string) parameters.
func (p *sfParser) member() (ProxyStatus, error) {
	var m ProxyStatus
	v, err := p.bareItem()
	if err != nil {
		return m, err
	}
	switch v := v.(type) {
	case sfToken:
		m.Name = string(v)
	case string:
		m.Name = v
	default:
		return m, p.fail("member is neither a token nor a string")
	}
	for p.s != "" && p.s[0] == ';' {
		p.s = strings.TrimLeft(p.s[1:], " ")
		key, err := p.key()
		if err != nil {
			return m, err
		}
		var val any = true
		if p.s != "" && p.s[0] == '=' {
			p.s = p.s[1:]
			if val, err = p.bareItem(); err != nil {
				return m, err
			}
		}
		// A later parameter of the same key wins (RFC 8941 §4.2.3.2).
		switch key {
		case "error":
			m.Error = ""
			if t, ok := val.(sfToken); ok {
				m.Error = ProxyError(t)
			}
		case "received-status":
			m.ReceivedStatus = 0
			if n, ok := val.(int64); ok && n > 0 && n <= math.MaxInt {
				m.ReceivedStatus = int(n)
			}
		case "details":
			m.Details = ""
			if s, ok := val.(string); ok {
				m.Details = s
			}
		}
	}
	return m, nil
}

// maxSFInteger is the largest RFC 8941 sf-integer (15 digits).
const maxSFInteger = 999_999_999_999_999

// sfToken distinguishes a parsed token from a parsed string.
type sfToken string

// key parses key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() (string, error) {
	i := 0
	for i < len(p.s) {
		c := p.s[i]
		if c >= 'a' && c <= 'z' || c == '*' || i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return "", p.fail("bad parameter key")
	}
	k := p.s[:i]
	p.s = p.s[i:]
	return k, nil
}

// bareItem parses an integer or decimal (int64 or float64), a string, a
// token (sfToken), a byte sequence ([]byte, left undecoded) or a boolean.
func (p *sfParser) bareItem() (any, error) {
	if p.s == "" {
		return nil, p.fail("missing item")
	}
	switch c := p.s[0]; {
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '"':
		return p.str()
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		i := 1
		for i < len(p.s) && (isTchar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
			i++
		}
		t := sfToken(p.s[:i])
		p.s = p.s[i:]
		return t, nil
	case c == ':':
		end := strings.IndexByte(p.s[1:], ':')
		if end < 0 {
			return nil, p.fail("unterminated byte sequence")
		}
		for _, b := range []byte(p.s[1 : 1+end]) {
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '+' || b == '/' || b == '=') {
				return nil, p.fail("bad byte sequence")
			}
		}
		v := []byte(p.s[1 : 1+end])
		p.s = p.s[end+2:]
		return v, nil
	case c == '?':
		if len(p.s) < 2 || p.s[1] != '0' && p.s[1] != '1' {
			return nil, p.fail("bad boolean")
		}
		v := p.s[1] == '1'
		p.s = p.s[2:]
		return v, nil
	}
	return nil, p.fail("bad item")
}

// number parses an sf-integer (at most 15 digits) or an sf-decimal (at
// most 12 integer and 3 fractional digits).
func (p *sfParser) number() (any, error) {
	i := 0
	if p.s[0] == '-' {
		i++
	}
	start, dot := i, -1
	for i < len(p.s) {
		c := p.s[i]
		if c >= '0' && c <= '9' {
			i++
		} else if c == '.' && dot < 0 {
			dot = i
			i++
		} else {
			break
		}
	}
	digits := i - start
	switch {
	case digits == 0 || dot == start:
		return nil, p.fail("bad number")
	case dot < 0 && digits > 15:
		return nil, p.fail("integer too long")
	case dot >= 0 && (dot-start > 12 || i-dot-1 < 1 || i-dot-1 > 3):
		return nil, p.fail("bad decimal")
	}
	num := p.s[:i]
	p.s = p.s[i:]
	if dot >= 0 {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return nil, p.fail("bad decimal")
		}
		return f, nil
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return nil, p.fail("bad integer")
	}
	return n, nil
}

// str parses an sf-string: printable ASCII, with \" and \\ escapes only.
func (p *sfParser) str() (string, error) {
	var b strings.Builder
	for i := 1; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '\\':
			if i+1 == len(p.s) || p.s[i+1] != '"' && p.s[i+1] != '\\' {
				return "", p.fail("bad escape in string")
			}
			i++
			b.WriteByte(p.s[i])
		case c == '"':
			p.s = p.s[i+1:]
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", p.fail("bad character in string")
		default:
			b.WriteByte(c)
		}
	}
	return "", p.fail("unterminated string")
}

package bhttp

import "github.com/quic-go/quic-go/quicvarint"

// Parser limits. The input's length bounds everything else.
const (
	// DefaultMaxFieldLines bounds the field lines of one message: header,
	// trailer and informational header lines together.
	DefaultMaxFieldLines = 256
	// DefaultMaxInformational bounds the informational responses before a
	// final response.
	DefaultMaxInformational = 8
)

// Limits bounds what a parser accepts; the zero value means the defaults.
type Limits struct {
	// MaxFieldLines bounds the field lines of a message (header, trailer
	// and informational header lines together); 0 means
	// DefaultMaxFieldLines. More get ErrTooLarge.
	MaxFieldLines int
	// MaxInformational bounds the informational responses; 0 means
	// DefaultMaxInformational. More get ErrTooLarge.
	MaxInformational int
}

func (l Limits) fieldLines() int {
	if l.MaxFieldLines > 0 {
		return l.MaxFieldLines
	}
	return DefaultMaxFieldLines
}

func (l Limits) informational() int {
	if l.MaxInformational > 0 {
		return l.MaxInformational
	}
	return DefaultMaxInformational
}

// ParseRequest parses a binary request of either framing with the default
// [Limits].
func ParseRequest(b []byte) (*Request, error) { return Limits{}.ParseRequest(b) }

// ParseResponse parses a binary response of either framing with the
// default [Limits].
func ParseResponse(b []byte) (*Response, error) { return Limits{}.ParseResponse(b) }

// ParseRequest parses a binary request (framing indicator 0 or 2). The
// content aliases b when it is carried in one piece.
func (l Limits) ParseRequest(b []byte) (*Request, error) {
	d := decoder{b: b, lines: l.fieldLines()}
	f, err := d.framing()
	if err != nil {
		return nil, err
	}
	if f != framingKnownRequest && f != framingIndeterminateRequest {
		return nil, malformed("framing indicator %d is a response's, not a request's", f)
	}
	d.indeterminate = f == framingIndeterminateRequest
	var ctl [4]string
	for i, what := range [...]string{"method", "scheme", "authority", "path"} {
		v, err := d.lengthPrefixed(what)
		if err != nil {
			return nil, err
		}
		ctl[i] = string(v)
	}
	if err := checkControl(ctl[0], ctl[1], ctl[2], ctl[3]); err != nil {
		return nil, err
	}
	r := &Request{Method: ctl[0], Scheme: ctl[1], Authority: ctl[2], Path: ctl[3]}
	if r.Header, r.Content, r.Trailer, err = d.rest(); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseResponse parses a binary response (framing indicator 1 or 3),
// informational responses included. The content aliases b when it is
// carried in one piece.
func (l Limits) ParseResponse(b []byte) (*Response, error) {
	d := decoder{b: b, lines: l.fieldLines()}
	f, err := d.framing()
	if err != nil {
		return nil, err
	}
	if f != framingKnownResponse && f != framingIndeterminateResponse {
		return nil, malformed("framing indicator %d is a request's, not a response's", f)
	}
	d.indeterminate = f == framingIndeterminateResponse
	r := &Response{}
	for {
		v, ok := d.varint()
		if !ok {
			return nil, malformed("status code truncated")
		}
		if v >= 200 && v <= 599 {
			r.Status = int(v)
			break
		}
		if v < 100 || v > 599 {
			return nil, malformed("status code %d is not 100 to 599", v)
		}
		if len(r.Informational) == l.informational() {
			return nil, tooLarge("more than %d informational responses", l.informational())
		}
		if len(d.b) == 0 {
			return nil, malformed("informational response %d is not followed by a final response", v)
		}
		h, err := d.fields("informational header")
		if err != nil {
			return nil, err
		}
		r.Informational = append(r.Informational, Informational{Status: int(v), Header: h})
	}
	if r.Header, r.Content, r.Trailer, err = d.rest(); err != nil {
		return nil, err
	}
	return r, nil
}

type decoder struct {
	b             []byte
	indeterminate bool
	lines         int // field lines still allowed
}

func (d *decoder) varint() (uint64, bool) {
	v, n, err := quicvarint.Parse(d.b)
	if err != nil {
		return 0, false
	}
	d.b = d.b[n:]
	return v, true
}

func (d *decoder) framing() (uint64, error) {
	f, ok := d.varint()
	if !ok {
		return 0, malformed("message is empty")
	}
	if f > 3 {
		return 0, malformed("framing indicator %d is not 0 to 3", f)
	}
	return f, nil
}

// lengthPrefixed reads a varint length and that many bytes.
func (d *decoder) lengthPrefixed(what string) ([]byte, error) {
	n, ok := d.varint()
	if !ok {
		return nil, malformed("%s length truncated", what)
	}
	if n > uint64(len(d.b)) {
		return nil, malformed("%s length %d exceeds the %d bytes left", what, n, len(d.b))
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v, nil
}

// rest reads the header section, the content and the trailer section,
// each of which may be truncated away (RFC 9292 §3.8), then the padding.
func (d *decoder) rest() (header Fields, content []byte, trailer Fields, err error) {
	if len(d.b) == 0 {
		return nil, nil, nil, nil
	}
	if header, err = d.fields("header"); err != nil {
		return nil, nil, nil, err
	}
	if len(d.b) == 0 {
		return header, nil, nil, nil
	}
	if content, err = d.content(); err != nil {
		return nil, nil, nil, err
	}
	if len(d.b) == 0 {
		return header, content, nil, nil
	}
	if trailer, err = d.fields("trailer"); err != nil {
		return nil, nil, nil, err
	}
	for i, c := range d.b {
		if c != 0 {
			return nil, nil, nil, malformed("padding has a non-zero byte at %d of %d", i, len(d.b))
		}
	}
	return header, content, trailer, nil
}

// fields reads one field section of the message's framing.
func (d *decoder) fields(what string) (Fields, error) {
	if !d.indeterminate {
		sec, err := d.lengthPrefixed(what + " section")
		if err != nil {
			return nil, err
		}
		sub := decoder{b: sec, lines: d.lines}
		var f Fields
		for len(sub.b) > 0 {
			if f, err = sub.line(f, what); err != nil {
				return nil, err
			}
		}
		d.lines = sub.lines
		return f, nil
	}
	var f Fields
	for {
		if len(d.b) == 0 {
			return nil, malformed("%s section has no terminator", what)
		}
		if d.b[0] == 0 {
			d.b = d.b[1:]
			return f, nil
		}
		var err error
		if f, err = d.line(f, what); err != nil {
			return nil, err
		}
	}
}

// line reads one field line and appends it to f.
func (d *decoder) line(f Fields, what string) (Fields, error) {
	if d.lines == 0 {
		return nil, tooLarge("more field lines than the limit")
	}
	d.lines--
	name, err := d.lengthPrefixed(what + " field name")
	if err != nil {
		return nil, err
	}
	value, err := d.lengthPrefixed(what + " field value")
	if err != nil {
		return nil, err
	}
	n, v := lowerName(name), string(value)
	if err := checkField(n, v); err != nil {
		return nil, err
	}
	return append(f, Field{Name: n, Value: v}), nil
}

// lowerName returns the name as a string folded to lower case.
func lowerName(b []byte) string {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			out := []byte(string(b))
			for j := i; j < len(out); j++ {
				out[j] = lower(out[j])
			}
			return string(out)
		}
	}
	return string(b)
}

// content reads the content of the message's framing.
func (d *decoder) content() ([]byte, error) {
	if !d.indeterminate {
		c, err := d.lengthPrefixed("content")
		if len(c) == 0 {
			c = nil // no content is nil, however it was framed
		}
		return c, err
	}
	var out []byte
	chunks := 0
	for {
		n, ok := d.varint()
		if !ok {
			return nil, malformed("content has no terminator")
		}
		if n == 0 {
			return out, nil
		}
		if n > uint64(len(d.b)) {
			return nil, malformed("content chunk length %d exceeds the %d bytes left", n, len(d.b))
		}
		chunk := d.b[:n:n]
		d.b = d.b[n:]
		if chunks++; chunks == 1 {
			out = chunk // alias the input when the content is one chunk
		} else {
			if chunks == 2 {
				out = append([]byte(nil), out...)
			}
			out = append(out, chunk...)
		}
	}
}

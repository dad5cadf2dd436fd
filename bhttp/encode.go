package bhttp

import "github.com/quic-go/quic-go/quicvarint"

// Encoding chooses how a message is written; the zero value is the plain
// known-length form.
type Encoding struct {
	// Indeterminate selects the indeterminate-length framing (RFC 9292
	// §3.2): field sections end with a zero, the content is one chunk.
	// The zero value is the known-length framing (§3.1).
	Indeterminate bool
	// Truncate omits the trailing sections that are empty: the trailer
	// section, then the content if it is empty too, then the header
	// section if it is empty too (§3.8; RFC 9458 Appendix A truncates its
	// request and response this way).
	Truncate bool
	// Padding is the number of zero bytes appended (§3.8).
	Padding int
}

// Append validates the request and appends its binary form to b.
// Field names are written in lower case.
func (r *Request) Append(b []byte, e Encoding) ([]byte, error) {
	if err := checkControl(r.Method, r.Scheme, r.Authority, r.Path); err != nil {
		return nil, err
	}
	if err := checkFields(r.Header); err != nil {
		return nil, err
	}
	if err := checkFields(r.Trailer); err != nil {
		return nil, err
	}
	if e.Padding < 0 {
		return nil, malformed("negative padding %d", e.Padding)
	}
	f := uint64(framingKnownRequest)
	if e.Indeterminate {
		f = framingIndeterminateRequest
	}
	b = quicvarint.Append(b, f)
	for _, s := range [...]string{r.Method, r.Scheme, r.Authority, r.Path} {
		b = quicvarint.Append(b, uint64(len(s)))
		b = append(b, s...)
	}
	return appendRest(b, e, r.Header, r.Content, r.Trailer), nil
}

// MarshalBinary returns the request in known-length form, untruncated.
func (r *Request) MarshalBinary() ([]byte, error) { return r.Append(nil, Encoding{}) }

// Append validates the response and appends its binary form to b.
// Field names are written in lower case.
func (r *Response) Append(b []byte, e Encoding) ([]byte, error) {
	for _, i := range r.Informational {
		if i.Status < 100 || i.Status > 199 {
			return nil, malformed("informational status %d is not 100 to 199", i.Status)
		}
		if err := checkFields(i.Header); err != nil {
			return nil, err
		}
	}
	if r.Status < 200 || r.Status > 599 {
		return nil, malformed("final status %d is not 200 to 599", r.Status)
	}
	if err := checkFields(r.Header); err != nil {
		return nil, err
	}
	if err := checkFields(r.Trailer); err != nil {
		return nil, err
	}
	if e.Padding < 0 {
		return nil, malformed("negative padding %d", e.Padding)
	}
	f := uint64(framingKnownResponse)
	if e.Indeterminate {
		f = framingIndeterminateResponse
	}
	b = quicvarint.Append(b, f)
	for _, i := range r.Informational {
		b = quicvarint.Append(b, uint64(i.Status))
		b = appendFields(b, e.Indeterminate, i.Header)
	}
	b = quicvarint.Append(b, uint64(r.Status))
	return appendRest(b, e, r.Header, r.Content, r.Trailer), nil
}

// MarshalBinary returns the response in known-length form, untruncated.
func (r *Response) MarshalBinary() ([]byte, error) { return r.Append(nil, Encoding{}) }

// appendRest appends the header section, content, trailer section and
// padding, leaving out what Truncate allows.
func appendRest(b []byte, e Encoding, header Fields, content []byte, trailer Fields) []byte {
	keep := 3
	if e.Truncate {
		switch {
		case len(trailer) > 0:
		case len(content) > 0:
			keep = 2
		case len(header) > 0:
			keep = 1
		default:
			keep = 0
		}
	}
	if keep >= 1 {
		b = appendFields(b, e.Indeterminate, header)
	}
	if keep >= 2 {
		b = appendContent(b, e.Indeterminate, content)
	}
	if keep >= 3 {
		b = appendFields(b, e.Indeterminate, trailer)
	}
	for range e.Padding {
		b = append(b, 0)
	}
	return b
}

func appendFields(b []byte, indeterminate bool, f Fields) []byte {
	if !indeterminate {
		n := 0
		for _, x := range f {
			n += quicvarint.Len(uint64(len(x.Name))) + len(x.Name) + quicvarint.Len(uint64(len(x.Value))) + len(x.Value)
		}
		b = quicvarint.Append(b, uint64(n))
	}
	for _, x := range f {
		b = quicvarint.Append(b, uint64(len(x.Name)))
		for i := range len(x.Name) {
			b = append(b, lower(x.Name[i]))
		}
		b = quicvarint.Append(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	if indeterminate {
		b = append(b, 0)
	}
	return b
}

func appendContent(b []byte, indeterminate bool, c []byte) []byte {
	if len(c) > 0 || !indeterminate {
		b = quicvarint.Append(b, uint64(len(c)))
		b = append(b, c...)
	}
	if indeterminate {
		b = append(b, 0)
	}
	return b
}

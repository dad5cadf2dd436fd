package bhttp

// Field is one field line: a name and a value (RFC 9292 §3.6). Names are
// lower case.
type Field struct {
	Name  string
	Value string
}

// Fields is a header or trailer section, in order. Names may repeat.
type Fields []Field

// Get returns the value of the first field named name (compared without
// regard to ASCII case), or "".
func (f Fields) Get(name string) string {
	for _, x := range f {
		if equalFold(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// Values returns the values of every field named name, in order.
func (f Fields) Values(name string) []string {
	var out []string
	for _, x := range f {
		if equalFold(x.Name, name) {
			out = append(out, x.Value)
		}
	}
	return out
}

// equalFold compares ASCII strings without regard to case; field names
// are ASCII by construction.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Request is an HTTP request: its control data (RFC 9292 §3.4), header
// fields, content and trailer fields.
type Request struct {
	Method    string // a token, such as "POST"
	Scheme    string // such as "https"
	Authority string // host[:port]; "" when absent (a host field may name it)
	Path      string // path and query, such as "/dns-query?dns=…"
	Header    Fields
	Content   []byte
	Trailer   Fields
}

// Informational is an informational (1xx) response that precedes a final
// response (RFC 9292 §3.5.1).
type Informational struct {
	Status int // 100 to 199
	Header Fields
}

// Response is an HTTP response: any informational responses, then the
// final status code (RFC 9292 §3.5), header fields, content and trailer
// fields.
type Response struct {
	Informational []Informational
	Status        int // 200 to 599
	Header        Fields
	Content       []byte
	Trailer       Fields
}

// Framing indicators (RFC 9292 §3.3).
const (
	framingKnownRequest          = 0
	framingKnownResponse         = 1
	framingIndeterminateRequest  = 2
	framingIndeterminateResponse = 3
)

package bhttp

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// dohRequest is what Firefox sends inside OHTTP for a DoH query: POST with
// the names its channel was given, in upper and lower case.
func dohRequest() *Request {
	return &Request{
		Method: "POST", Scheme: "https", Authority: "dns.example:8443", Path: "/dns-query",
		Header: Fields{
			{"Accept", "application/dns-message"},
			{"Content-Type", "application/dns-message"},
			{"Cache-Control", "no-store"},
			{"User-Agent", ""},
		},
		Content: []byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0},
	}
}

func TestRoundTripEncodings(t *testing.T) {
	req := dohRequest()
	lowered := dohRequest()
	for i := range lowered.Header {
		lowered.Header[i].Name = strings.ToLower(lowered.Header[i].Name)
	}
	res := &Response{
		Informational: []Informational{{Status: 100}},
		Status:        200,
		Header:        Fields{{"content-type", "application/dns-message"}},
		Content:       []byte("answer"),
		Trailer:       Fields{{"x-t", "1"}},
	}
	for _, e := range []Encoding{{}, {Indeterminate: true}, {Truncate: true}, {Indeterminate: true, Truncate: true, Padding: 7}, {Padding: 1}} {
		b, err := req.Append(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, lowered) {
			t.Fatalf("%+v: request %+v, want %+v", e, got, lowered)
		}
		if bytes.Contains(b, []byte("Content-Type")) {
			t.Fatalf("%+v: names not written in lower case: %q", e, b)
		}
		b, err = res.Append(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		gotRes, err := ParseResponse(b)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		if !reflect.DeepEqual(gotRes, res) {
			t.Fatalf("%+v: response %+v, want %+v", e, gotRes, res)
		}
		if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a response parsed as a request: %v", err)
		}
	}
}

func TestFieldsGet(t *testing.T) {
	f := Fields{{"accept", "a"}, {"x", "1"}, {"x", "2"}}
	if f.Get("Accept") != "a" || f.Get("missing") != "" {
		t.Fatal("Get")
	}
	if v := f.Values("X"); !reflect.DeepEqual(v, []string{"1", "2"}) {
		t.Fatalf("Values = %v", v)
	}
}

// message builds a known-length request by hand so that invalid ones can
// be made.
func message(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func lp(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func TestParseRefuses(t *testing.T) {
	ctl := message(lp("POST"), lp("https"), lp("dns.example"), lp("/dns-query"))
	field := func(n, v string) []byte { return message(lp(n), lp(v)) }
	section := func(lines ...[]byte) []byte { b := message(lines...); return message([]byte{byte(len(b))}, b) }
	testCases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"framing indicator 4", []byte{4}},
		{"a response's framing", message([]byte{1}, []byte{0x40, 200})},
		{"truncated control data", message([]byte{0}, lp("POST"), lp("https"))},
		{"method not a token", message([]byte{0}, lp("PO ST"), lp("https"), lp(""), lp("/"))},
		{"empty method", message([]byte{0}, lp(""), lp("https"), lp(""), lp("/"))},
		{"CONNECT", message([]byte{0}, lp("CONNECT"), lp(""), lp("dns.example:443"), lp(""))},
		{"bad scheme", message([]byte{0}, lp("GET"), lp("1ttp"), lp(""), lp("/"))},
		{"authority with space", message([]byte{0}, lp("GET"), lp("https"), lp("a b"), lp("/"))},
		{"authority with userinfo", message([]byte{0}, lp("GET"), lp("https"), lp("u@h"), lp("/"))},
		{"empty path", message([]byte{0}, lp("GET"), lp("https"), lp("h"), lp(""))},
		{"relative path", message([]byte{0}, lp("GET"), lp("https"), lp("h"), lp("x"))},
		{"path * with GET", message([]byte{0}, lp("GET"), lp("https"), lp("h"), lp("*"))},
		{"path with control byte", message([]byte{0}, lp("GET"), lp("https"), lp("h"), lp("/\x01"))},
		{"pseudo-field", message([]byte{0}, ctl, section(field(":path", "/")))},
		{"field name with space", message([]byte{0}, ctl, section(field("a b", "x")))},
		{"empty field name", message([]byte{0}, ctl, section(field("", "x")))},
		{"field value with LF", message([]byte{0}, ctl, section(field("a", "x\ny")))},
		{"field value with NUL", message([]byte{0}, ctl, section(field("a", "x\x00")))},
		{"field value with leading space", message([]byte{0}, ctl, section(field("a", " x")))},
		{"field value with trailing tab", message([]byte{0}, ctl, section(field("a", "x\t")))},
		{"header section longer than the message", message([]byte{0}, ctl, []byte{9}, field("a", "b"))},
		{"field line cut in its value", message([]byte{0}, ctl, []byte{3}, lp("a"), []byte{5})},
		{"content longer than the message", message([]byte{0}, ctl, []byte{0}, []byte{5, 1, 2})},
		{"non-zero padding", message([]byte{0}, ctl, []byte{0, 0, 0, 0, 1})},
		{"indeterminate header without terminator", message([]byte{2}, ctl, field("a", "b"))},
		{"indeterminate content without terminator", message([]byte{2}, ctl, []byte{0}, []byte{2, 1, 2})},
		{"indeterminate trailer without terminator", message([]byte{2}, ctl, []byte{0, 0}, field("a", "b"))},
		{"indeterminate content chunk past the end", message([]byte{2}, ctl, []byte{0}, []byte{9, 1})},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(tc.in)
			if !errors.Is(err, ErrMalformed) || r != nil {
				t.Fatalf("got %+v, %v; want ErrMalformed", r, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"status 99", []byte{1, 0x40, 99}},
		{"status 600", []byte{1, 0x42, 0x58}},
		{"only informational", []byte{1, 0x40, 100}},
		{"informational without final", []byte{1, 0x40, 100, 0}},
		{"status truncated", []byte{1, 0x40}},
		{"a request's framing", []byte{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseResponse(tc.in)
			if !errors.Is(err, ErrMalformed) || r != nil {
				t.Fatalf("got %+v, %v; want ErrMalformed", r, err)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	r := dohRequest()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Limits{MaxFieldLines: 3}).ParseRequest(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("4 field lines under a limit of 3: %v", err)
	}
	if _, err := (Limits{MaxFieldLines: 4}).ParseRequest(b); err != nil {
		t.Fatalf("4 field lines under a limit of 4: %v", err)
	}
	many := &Request{Method: "GET", Scheme: "https", Path: "/"}
	for range DefaultMaxFieldLines + 1 {
		many.Header = append(many.Header, Field{"a", "b"})
	}
	b, _ = many.Append(nil, Encoding{Indeterminate: true})
	if _, err := ParseRequest(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d field lines by default: %v", DefaultMaxFieldLines+1, err)
	}
	res := &Response{Status: 204}
	for range DefaultMaxInformational + 1 {
		res.Informational = append(res.Informational, Informational{Status: 103})
	}
	b, _ = res.MarshalBinary()
	if _, err := ParseResponse(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d informational responses: %v", DefaultMaxInformational+1, err)
	}
	if _, err := (Limits{MaxInformational: DefaultMaxInformational + 1}).ParseResponse(b); err != nil {
		t.Fatalf("raised limit: %v", err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, r := range []*Request{
		{Method: "GET", Scheme: "https", Path: ""},
		{Method: "GET", Scheme: "https", Path: "/", Header: Fields{{"bad name", "x"}}},
		{Method: "GET", Scheme: "https", Path: "/", Trailer: Fields{{"a", "\r"}}},
	} {
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%+v encoded: %v", r, err)
		}
	}
	for _, r := range []*Response{
		{Status: 199},
		{Status: 600},
		{Status: 200, Informational: []Informational{{Status: 200}}},
	} {
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%+v encoded: %v", r, err)
		}
	}
	if _, err := (&Response{Status: 200}).Append(nil, Encoding{Padding: -1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("negative padding: %v", err)
	}
}

func TestContentAliasesInput(t *testing.T) {
	b, _ := dohRequest().MarshalBinary()
	r, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff // the content's last byte (before the trailer length)
	if r.Content[len(r.Content)-1] == dohRequest().Content[len(r.Content)-1] {
		t.Fatal("content does not alias the input")
	}
	// Several chunks are joined into new memory.
	in := message([]byte{2}, lp("GET"), lp("https"), lp(""), lp("/"), []byte{0}, []byte{1, 'a', 1, 'b', 0})
	r, err = ParseRequest(in)
	if err != nil || string(r.Content) != "ab" {
		t.Fatalf("chunks: %q, %v", r.Content, err)
	}
}

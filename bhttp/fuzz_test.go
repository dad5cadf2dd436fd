package bhttp

import (
	"errors"
	"reflect"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	for _, r := range []*Request{dohRequest(), rfcRequest} {
		for _, e := range []Encoding{{}, {Indeterminate: true}, {Truncate: true, Padding: 3}} {
			b, _ := r.Append(nil, e)
			f.Add(b)
		}
	}
	res := &Response{Informational: []Informational{{Status: 103, Header: Fields{{"link", "x"}}}}, Status: 200,
		Header: Fields{{"content-type", "application/dns-message"}}, Content: []byte{1, 2}, Trailer: Fields{{"t", "v"}}}
	for _, e := range []Encoding{{}, {Indeterminate: true}, {Truncate: true}} {
		b, _ := res.Append(nil, e)
		f.Add(b)
	}
	f.Add([]byte{0x01, 0x40, 0xc8})
	f.Add([]byte{0x02, 0x03})
}

// Invariants: no panic; an error wraps a sentinel and comes with no
// message; a message that parses re-encodes, in both framings, to bytes
// that parse back to the same message.
func FuzzParseRequest(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseRequest(in)
		if err != nil {
			if r != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("bad error %v (request %+v)", err, r)
			}
			return
		}
		for _, e := range []Encoding{{}, {Indeterminate: true, Truncate: true}} {
			out, err := r.Append(nil, e)
			if err != nil {
				t.Fatalf("parsed request does not encode: %v", err)
			}
			again, err := ParseRequest(out)
			if err != nil {
				t.Fatalf("re-encoded request does not parse: %v", err)
			}
			if !reflect.DeepEqual(again, r) {
				t.Fatalf("round trip changed\n%+v\nto\n%+v", r, again)
			}
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseResponse(in)
		if err != nil {
			if r != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("bad error %v (response %+v)", err, r)
			}
			return
		}
		if r.Status < 200 || r.Status > 599 {
			t.Fatalf("final status %d", r.Status)
		}
		for _, e := range []Encoding{{}, {Indeterminate: true, Truncate: true}} {
			out, err := r.Append(nil, e)
			if err != nil {
				t.Fatalf("parsed response does not encode: %v", err)
			}
			again, err := ParseResponse(out)
			if err != nil {
				t.Fatalf("re-encoded response does not parse: %v", err)
			}
			if !reflect.DeepEqual(again, r) {
				t.Fatalf("round trip changed\n%+v\nto\n%+v", r, again)
			}
		}
	})
}

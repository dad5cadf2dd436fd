package bhttp_test

import (
	"errors"
	"fmt"

	"github.com/odohd/odoh/bhttp"
)

// A DoH query in a binary request, as Firefox puts it inside Oblivious
// HTTP, and the gateway's reading of it.
func Example() {
	req := &bhttp.Request{
		Method: "POST", Scheme: "https", Authority: "dns.example", Path: "/dns-query",
		Header:  bhttp.Fields{{Name: "Content-Type", Value: "application/dns-message"}},
		Content: []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0},
	}
	b, err := req.Append(nil, bhttp.Encoding{Truncate: true})
	if err != nil {
		panic(err)
	}
	got, err := bhttp.ParseRequest(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Method, got.Authority+got.Path, got.Header.Get("content-type"), len(got.Content))
	// Output: POST dns.example/dns-query application/dns-message 12
}

// Parsing is strict and every error wraps ErrMalformed, or ErrTooLarge for
// a message beyond the parser's Limits; a gateway answers either with 400.
func ExampleLimits_ParseRequest() {
	req := &bhttp.Request{
		Method: "GET", Scheme: "https", Authority: "dns.example", Path: "/dns-query?dns=AAABAAABAAAAAAAA",
		Header: bhttp.Fields{{Name: "accept", Value: "application/dns-message"}, {Name: "accept-language", Value: "en"}},
	}
	b, err := req.Append(nil, bhttp.Encoding{})
	if err != nil {
		panic(err)
	}
	_, err = bhttp.Limits{MaxFieldLines: 1}.ParseRequest(b)
	fmt.Println(errors.Is(err, bhttp.ErrTooLarge))
	_, err = bhttp.ParseRequest(b[:len(b)-3]) // cut inside the header section
	fmt.Println(errors.Is(err, bhttp.ErrMalformed))
	// Output:
	// true
	// true
}

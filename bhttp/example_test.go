package bhttp_test

import (
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

package odoh_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/odohd/odoh/odoh"
)

// A full ODoH exchange in memory: the target publishes its configs, the
// client seals a query to them, the target opens it and seals the answer,
// and the client opens that.
func Example() {
	// Target: a key pair (from a secret seed in production) and its configs.
	targetKey, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		log.Fatal(err)
	}
	published, _ := odoh.MarshalConfigs(targetKey.Config()) // GET /.well-known/odohconfigs

	// Client: parse the configs and seal a DNS query (wire format) to the first.
	configs, err := odoh.ParseConfigs(published)
	if err != nil {
		log.Fatal(err)
	}
	query := []byte("\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")
	body, qctx, err := odoh.SealQuery(configs[0], query)
	if err != nil {
		log.Fatal(err)
	}

	// Target: parse, open with the key its key ID names, answer.
	msg, err := odoh.ParseMessage(body)
	if err != nil {
		log.Fatal(err) // HTTP 400
	}
	q, err := targetKey.OpenQuery(msg)
	if err != nil {
		log.Fatal(err) // 401 for odoh.ErrKeyMismatch, else 400
	}
	answer := q.DNS // a real target resolves q.DNS here
	respBody, err := q.SealResponse(answer)
	if err != nil {
		log.Fatal(err)
	}

	// Client: open the answer.
	got, err := qctx.OpenResponse(respBody)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("query %d bytes on the wire, answer %d bytes on the wire, %d bytes of DNS\n", len(body), len(respBody), len(got))
	// Output: query 213 bytes on the wire, answer 505 bytes on the wire, 29 bytes of DNS
}

// A target that holds several keys picks one by the message's key ID; a
// query to a key it does not hold is a key mismatch, which it answers with
// HTTP 401 so that the client refetches the configs.
func ExamplePrivateKey_OpenQuery() {
	current, _ := odoh.GenerateKey(odoh.DefaultSuite())
	retired, _ := odoh.GenerateKey(odoh.DefaultSuite())
	body, _, _ := odoh.SealQuery(retired.Config(), []byte{0, 0, 1, 0})

	msg, _ := odoh.ParseMessage(body)
	_, err := current.OpenQuery(msg)
	fmt.Println(errors.Is(err, odoh.ErrKeyMismatch))
	// Output: true
}

// Clients and proxies keep a target's configs for the lifetime its
// Cache-Control gives them, by one rule (RFC 9111); a proxy is a shared
// cache, for which s-maxage counts and private forbids storing.
func ExampleMaxAge() {
	for _, cc := range [][]string{
		{"max-age=3600"},
		{`max-age="60"`, "must-revalidate"},
		{"max-age=600, no-store"},
		{"private, max-age=120, s-maxage=30"},
		nil,
	} {
		client, okc := odoh.MaxAge(cc, false)
		proxy, okp := odoh.MaxAge(cc, true)
		fmt.Printf("%q: client %v %v, proxy %v %v\n", cc, client, okc, proxy, okp)
	}
	// Output:
	// ["max-age=3600"]: client 1h0m0s true, proxy 1h0m0s true
	// ["max-age=\"60\"" "must-revalidate"]: client 1m0s true, proxy 1m0s true
	// ["max-age=600, no-store"]: client 0s true, proxy 0s true
	// ["private, max-age=120, s-maxage=30"]: client 2m0s true, proxy 0s true
	// []: client 0s false, proxy 0s false
}

// A proxy names what went wrong in Proxy-Status (RFC 9209); a client reads
// it to tell a failed target from a failed proxy, and fails over to the
// right one.
func ExampleParseProxyStatus() {
	written := odoh.ProxyStatus{Name: "odoh-proxy", Error: odoh.ProxyConnectionRefused}.String()
	fmt.Println(written)
	for _, field := range []string{written, "odoh-proxy; received-status=401", `odoh-proxy; error=http_request_denied; details="client rate limit"`} {
		members, err := odoh.ParseProxyStatus(field)
		if err != nil {
			log.Fatal(err)
		}
		last := members[len(members)-1] // the intermediary closest to the client
		fmt.Printf("error=%q received-status=%d: the target's fault: %v\n", last.Error, last.ReceivedStatus, last.NextHopFault())
	}
	// Output:
	// odoh-proxy; error=connection_refused
	// error="connection_refused" received-status=0: the target's fault: true
	// error="" received-status=401: the target's fault: true
	// error="http_request_denied" received-status=0: the target's fault: false
}

// Body limits follow the suite: a HKDF-SHA512 key ID is 64 bytes, and the
// largest query of any suite is MaxQuerySize.
func ExampleMaxQuerySizeFor() {
	sha512 := odoh.Suite{KEM: odoh.KEMX25519, KDF: odoh.KDFHKDFSHA512, AEAD: odoh.AEADAES256GCM}
	fmt.Println(odoh.MaxQuerySizeFor(odoh.DefaultSuite()), odoh.MaxQuerySizeFor(sha512), odoh.MaxQuerySize)
	fmt.Println(odoh.MaxResponseSizeFor(odoh.DefaultSuite()), odoh.MaxResponseSizeFor(sha512), odoh.MaxResponseSize)
	// Output:
	// 65572 65604 65604
	// 65556 65572 65572
}

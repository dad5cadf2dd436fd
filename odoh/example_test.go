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

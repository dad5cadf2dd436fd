package ohttp_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// A gateway publishes its key configuration; a client encapsulates a
// request to it; the gateway answers.
func Example() {
	seed := bytes.Repeat([]byte{0x42}, ohttp.SeedSize) // a secret in real life
	key, err := ohttp.DeriveKey(1, odoh.KEMX25519, seed)
	if err != nil {
		panic(err)
	}
	keys, _ := ohttp.MarshalKeyConfigs(key.Config()) // served as application/ohttp-keys

	// Client: the request is a Binary HTTP message (package bhttp).
	configs, err := ohttp.ParseKeyConfigs(keys)
	if err != nil {
		panic(err)
	}
	encReq, client, err := ohttp.EncapsulateRequest(configs[0], []byte("binary request"))
	if err != nil {
		panic(err)
	}

	// Gateway: pick the key by ID, decapsulate, answer.
	hdr, _ := ohttp.ParseRequestHeader(encReq)
	fmt.Println("key", hdr.KeyID, hdr.Suite)
	req, gw, err := key.DecapsulateRequest(encReq)
	if err != nil {
		panic(err)
	}
	encRes, _ := gw.EncapsulateResponse(append([]byte("answer to "), req...))

	res, err := client.DecapsulateResponse(encRes)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res))
	// Output:
	// key 1 X25519/HKDF-SHA256/AES-128-GCM
	// answer to binary request
}

// A request to a key the gateway no longer holds is an odoh.ErrKeyMismatch,
// which the gateway answers with the "ohttp-key" problem (RFC 9458 §5.3);
// a relay or client that recognises it fetches the keys again. Any other
// failure to decapsulate is a plain 400.
func ExamplePrivateKey_DecapsulateRequest() {
	retired, _ := ohttp.GenerateKey(1, odoh.KEMX25519)
	current, _ := ohttp.GenerateKey(2, odoh.KEMX25519)
	encReq, _, _ := ohttp.EncapsulateRequest(retired.Config(), []byte("binary request"))

	_, _, err := current.DecapsulateRequest(encReq)
	fmt.Println(errors.Is(err, odoh.ErrKeyMismatch), err)
	if errors.Is(err, odoh.ErrKeyMismatch) {
		// The gateway's answer, and the client's reading of it.
		fmt.Println(ohttp.IsKeyProblem(400, []string{ohttp.ProblemContentType}, ohttp.KeyProblem()))
	}

	encReq, _, _ = ohttp.EncapsulateRequest(current.Config(), []byte("binary request"))
	_, _, err = current.DecapsulateRequest(encReq[:20])
	fmt.Println(errors.Is(err, odoh.ErrMalformed))
	// Output:
	// true ohttp: key mismatch: key ID 1 is not 2
	// true
	// true
}

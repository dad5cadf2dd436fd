package ohttp_test

import (
	"bytes"
	"fmt"

	"github.com/odohd/odoh/ohttp"
)

// A gateway publishes its key configuration; a client encapsulates a
// request to it; the gateway answers.
func Example() {
	seed := bytes.Repeat([]byte{0x42}, ohttp.SeedSize) // a secret in real life
	key, err := ohttp.DeriveKey(1, ohttp.KEMX25519, seed)
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

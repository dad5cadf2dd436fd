// Package ohttp implements Oblivious HTTP (RFC 9458): gateway key
// configurations and their application/ohttp-keys lists (§3), and the
// HPKE encapsulation of requests and responses (§4) that a client, its
// relay and a gateway exchange as message/ohttp-req and message/ohttp-res.
// The messages encapsulated are Binary HTTP messages (RFC 9292, package
// bhttp), though this package treats them as opaque bytes.
//
// A gateway holds a [PrivateKey] (made with [DeriveKey] or [GenerateKey]),
// publishes its [KeyConfig] with [MarshalKeyConfigs], picks the key of an
// Encapsulated Request by [ParseRequestHeader]'s key ID, opens the request
// with [PrivateKey.DecapsulateRequest] and answers with
// [GatewayContext.EncapsulateResponse].
//
// A client parses the gateway's configurations with [ParseKeyConfigs],
// encapsulates a request with [EncapsulateRequest] and opens the answer
// with [ClientContext.DecapsulateResponse].
//
// Like package odoh, this package is pure (no network) and strict: exact
// lengths, no trailing bytes in configurations, every error wrapping one
// of [ErrMalformed], [ErrKeyMismatch], [ErrDecrypt], [ErrEncrypt] and
// [ErrUnsupported], and no panic on any input. A gateway answers
// [ErrKeyMismatch] with the "ohttp-key" problem of §5.3 ([KeyProblem]) and
// every other failure to decapsulate with 400 (§5.2).
//
// The HPKE suites and their identifiers are shared with package odoh.
package ohttp

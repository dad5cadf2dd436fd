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
// lengths, no trailing bytes in configurations, and no panic on any input.
// It shares odoh's vocabulary rather than keeping a copy: the HPKE
// identifiers (odoh.Suite, odoh.KEMX25519, …) and the sentinel errors,
// so that an error or a suite means the same in both. Every error wraps one of
// [odoh.ErrMalformed] (the wire format is not followed: 400),
// [odoh.ErrKeyMismatch] (a key ID, KEM or symmetric pair the gateway's key
// does not have, RFC 9458 §4.3), [odoh.ErrDecrypt] (HPKE or AEAD
// authentication failed: 400), [odoh.ErrEncrypt] (sealing failed on the
// sending side) and [odoh.ErrUnsupported] (an algorithm this package does
// not implement, or no usable configuration). A gateway answers
// odoh.ErrKeyMismatch with the "ohttp-key" problem of §5.3 ([KeyProblem]),
// on which the client refetches the keys, and every other failure to
// decapsulate with 400 (§5.2).
package ohttp

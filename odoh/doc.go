// Package odoh implements the wire formats and cryptography of Oblivious DNS
// over HTTPS (RFC 9230): key configurations (ObliviousDoHConfigs, §5), key
// identifiers and message framing (§6.1), and the HPKE-based encryption of
// queries and responses (§6.2, §7, §8).
//
// The package is pure: it never touches the network and works on DNS wire
// bytes, so it can be shared by clients, proxies and targets alike.
//
// A client seals a DNS query to a target's [Config] with [SealQuery] and
// keeps the returned [QueryContext] to open the target's answer. A target
// parses the message with [ParseMessage], picks its [PrivateKey] by the
// message's key ID, opens it with [PrivateKey.OpenQuery] and answers with
// [Query.SealResponse].
//
// Parsers are strict (exact lengths, no trailing bytes, zero padding checked
// in constant time) and never panic. Errors wrap one of the sentinels
// [ErrMalformed], [ErrKeyMismatch], [ErrDecrypt], [ErrEncrypt], [ErrUnsupported] and
// [ErrTooLarge], so servers can map them to HTTP statuses with [errors.Is]:
// a key mismatch is 401, everything else a client sent is 400.
//
// Padding follows RFC 8467 block padding by default, applied to the ODoH
// padding field: queries are padded so that the plaintext is a multiple of
// [QueryBlockSize] bytes, responses a multiple of [ResponseBlockSize] bytes.
package odoh

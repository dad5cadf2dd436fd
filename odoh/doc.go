// Package odoh implements the wire formats and cryptography of Oblivious DNS
// over HTTPS (RFC 9230): key configurations (ObliviousDoHConfigs, §5), key
// identifiers and message framing (§6.1), and the HPKE-based encryption of
// queries and responses (§6.2, §7, §8).
//
// The package is pure: it never touches the network and works on DNS wire
// bytes and header values, so it can be shared by clients, proxies and
// targets alike.
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
//
// # ODoH over HTTP
//
// This package is also the one home of the vocabulary that clients,
// proxies and targets share on the HTTP side, so that no role keeps a copy
// that could drift from the others':
//
//   - paths: [QueryPath] and [ConfigsPath];
//   - media types: [ContentType], [DoHContentType], [ConfigsContentType],
//     and the one Content-Type check, [HasContentType];
//   - message size limits, per suite ([MaxQuerySizeFor],
//     [MaxResponseSizeFor]) and over all suites ([MaxQuerySize],
//     [MaxResponseSize], [MaxConfigsSize]): every role's default limit on
//     an ODoH message or configs body is one of these;
//   - the Cache-Control rule, [MaxAge] (RFC 9111), with which clients and
//     proxies decide how long to keep a target's configs;
//   - Proxy-Status (RFC 9209): the error types a proxy writes
//     ([ProxyError]), the member it renders and a client parses
//     ([ProxyStatus], [ParseProxyStatus]), and which errors blame the
//     target ([ProxyError.NextHop]).
//
// All of it is plain data and string parsing: the package still never
// touches the network.
package odoh

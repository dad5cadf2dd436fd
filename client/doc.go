// Package client is the client side of Oblivious DNS over HTTPS (RFC 9230):
// a Client that seals DNS queries to a target's key and posts them through
// a proxy, a Stub that serves a whole machine's DNS over ODoH, and DNS stamps
// (sdns://) for interoperating with the DNS-stub ecosystem.
//
// A Client is configured with proxies (RFC 6570 URI templates such as
// https://proxy.example/dns-query{?targethost,targetpath}, plain https URLs,
// or relay stamps) and targets (https URLs or target stamps). Each query goes
// through a random healthy proxy to a random healthy target; on a transport
// error, a 5xx or a bad response the next query-attempt uses another pair. A
// proxy and a target with the same registrable domain are refused, since one
// operator would then learn both who asks and what. Without a proxy the
// client refuses to work unless Options.Direct says otherwise.
//
// Target configs come from a proxy's config relay (the default with a
// proxy, so that the target never sees the client's address), from the
// target's /.well-known/odohconfigs (the default in direct mode; with a
// proxy only when chosen, see ConfigFromTarget for its privacy cost), or
// from static bytes, and are cached for their max-age. A 401 means the
// target rotated its keys: the configs are fetched again, once for all
// concurrent queries, and each query is retried once (from the target with
// a proxy: in the background, and the query fails). A 400 is never retried. Responses are checked as RFC 9230 §4.3 and §7
// require (content type, message type, nonce length, authentication, zero
// padding), redirects are never followed, and requests carry no cookies,
// no User-Agent and no client state: only Content-Type, Accept and
// Cache-Control. Queries travel with DNS ID 0 and are padded to 128-byte
// blocks (RFC 8467).
//
// HTTP/2 is the default transport; Options.HTTP3 swaps in quic-go's HTTP/3
// transport.
package client

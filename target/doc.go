// Package target implements the target of Oblivious DNS over HTTPS (RFC 9230):
// the server that decrypts a client's query, resolves it and encrypts the
// answer, without ever learning who asked (the proxy in between knows that).
//
// The pieces, each usable on its own:
//
//   - [Handler], made by [New], is the http.Handler for POST /dns-query
//     (ODoH, and plain DoH of RFC 8484 when enabled) and GET
//     /.well-known/odohconfigs. It maps errors to the status codes of RFC
//     9230 §4.3 and §8: 401 for an unknown key ID, 400 for anything
//     malformed or undecryptable, 405, 415 and 413 for method, media type
//     and size. A resolution failure is an encrypted SERVFAIL with status
//     200, never a dropped connection.
//   - [Keyring] holds the keys: derived from a secret seed and the rotation
//     epoch, so that every replica sharing the seed accepts the same keys
//     without coordination; the previous, the current and the next epoch
//     are accepted (the next one absorbs clock skew between replicas).
//   - [Resolver] is what answers the DNS queries. [Upstreams] is a failover
//     pool of udp://, tcp://, tls:// and https:// resolvers that skips an
//     upstream for a backoff after repeated failures; [Zone] answers
//     from an RFC 1035 zone file; [Cache] keeps answers for their TTL;
//     [Chain] puts them together (zone, then cache, then upstreams).
//   - [Metrics], [UpstreamMetrics] and [CacheMetrics] are what the handler,
//     the pool and the cache report; nil reports nothing. The daemon's
//     Prometheus implementation of them is internal/metrics. Their labels
//     carry no addresses and no names.
//
// Construction, serving and errors follow the conventions of the module's
// public packages: every type is made with New…(…Config), whose zero
// fields mean documented defaults ([New], [NewKeyring], [NewUpstreams],
// [NewCache], [NewChain]; a [Zone] is parsed with [LoadZone] or
// [ParseZone]); the Handler is a plain http.Handler, served by the caller
// over HTTP/2 and HTTP/3 (as cmd/odoh-target does), and [Upstreams.Close]
// releases the pool's sockets; a request's failure is answered by its
// status (see [Handler]), and a resolution's by SERVFAIL inside a 200.
//
// Privacy: nothing here logs a query, a client address, a key or the seed.
package target

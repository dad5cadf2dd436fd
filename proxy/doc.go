// Package proxy is an Oblivious DoH relay (the "proxy" of RFC 9230, §4.1).
//
// A [Handler] receives
//
//	POST /dns-query?targethost=HOST[:PORT]&targetpath=%2Fdns-query
//
// (also at /proxy, the path existing clients use), checks the request, and
// forwards its body to https://HOST[:PORT]/PATH over a pooled HTTP/2 (or
// HTTP/3) connection shared by all clients. The proxy learns who asks but not
// what; the target learns what is asked but not by whom. Everything here
// exists to keep that split intact and to make the relay safe to expose:
//
//   - Target policy ([Policy]): an explicit allowlist of host[:port] entries
//     (an open relay only with AllowOpen), port 443 unless an entry names
//     another, and a dialer that resolves names itself and refuses loopback,
//     private, link-local and other special addresses unless the allowlist
//     names that exact IP literal. The upstream URL is built structurally
//     (url.URL{Scheme: "https", Host, Path}) from values that passed a strict
//     grammar, so no query value can redirect the request elsewhere.
//   - Privacy: the upstream request is built from scratch with a fixed set of
//     headers (Content-Type, Accept, Content-Length and the proxy's own
//     User-Agent); nothing the client sent besides the body reaches the
//     target. Only Content-Type, Content-Length and Cache-Control come back,
//     with a Proxy-Status header (RFC 9209). There are no per-request logs and
//     metrics never carry addresses or names.
//   - Errors follow RFC 9230 (see Handler): malformed requests get a 4xx
//     with "Proxy-Status: NAME; error=http_request_error", policy refusals a
//     403, upstream failures a 502/504 naming the cause, and any response
//     of the target is relayed with its status and body unchanged plus
//     "received-status".
//   - Limits: request and response size caps, connect/TLS/response timeouts,
//     a per-client token bucket and a cap on concurrent requests (429).
//   - Config relay: GET /.well-known/odohconfigs?targethost=HOST fetches the
//     target's ObliviousDoHConfigs through the same policy and caches them for
//     all clients, so clients never need to contact a target directly. Only
//     a well-framed configs list is relayed, always as
//     application/octet-stream with "X-Content-Type-Options: nosniff".
//
// Redirects from targets are never followed: their status and body reach
// the client like any other response (their Location header does not).
package proxy

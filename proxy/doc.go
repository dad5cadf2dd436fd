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
//
//   - Privacy: the upstream request is built from scratch with a fixed set of
//     headers (Content-Type, Accept, Content-Length and the proxy's own
//     User-Agent); nothing the client sent besides the body reaches the
//     target. Only Content-Type, Content-Length and Cache-Control come back,
//     with a Proxy-Status header (RFC 9209). There are no per-request logs and
//     metrics never carry addresses or names.
//
//   - Errors follow RFC 9230 (see Handler): malformed requests get a 4xx
//     with "Proxy-Status: NAME; error=http_request_error", policy refusals a
//     403, upstream failures a 502/504 naming the cause, and any response
//     of the target is relayed with its status and body unchanged plus
//     "received-status".
//
//   - Limits: request and response size caps, connect/TLS/response timeouts,
//     a per-client token bucket and a cap on concurrent requests (429).
//
//   - Config relay: GET /.well-known/odohconfigs?targethost=HOST fetches the
//     target's ObliviousDoHConfigs through the same policy and caches them for
//     all clients, so clients never need to contact a target directly. Only
//     a well-framed configs list is relayed, always as
//     application/octet-stream with "X-Content-Type-Options: nosniff".
//
//   - Configs tunnel: CONNECT HOST:PORT (RFC 9110 §9.3.6; over HTTP/2 RFC
//     9113 §8.5, over HTTP/3 RFC 9114 §4.4, over HTTP/1.1 by hijacking the
//     connection) opens a byte stream to an allowed target, in which the
//     client runs its own TLS session with the target and fetches its
//     configs. The relay's answer could be forged by the proxy; the
//     tunnel's cannot, since the client verifies the target's certificate
//     for its name, and the target still sees only the proxy's address.
//     The destination passes the same policy and SSRF-safe dialer as
//     forwarded queries (an allowlisted HOST:PORT, names resolved and
//     checked by the proxy); the stream must start with a TLS ClientHello
//     whose server name (SNI) is HOST, or none for an IP literal, so that
//     it reaches no other site that the address serves (a CDN's, say).
//     A ClientHello split over records, or with Encrypted Client Hello's
//     public name, is refused. The tunnel is bounded in bytes
//     (TunnelMaxBytes) and time
//     (TunnelTimeout), per client (MaxTunnelsPerClient) and in all
//     (MaxTunnels), besides the client's rate limit. Tunnels are counted
//     in metrics (odoh_proxy_tunnels_total, _open, _bytes_total) and never
//     logged. Refusals answer like the relay's (403 for the policy, 429
//     for the caps, 502/504 for the target); DisableTunnel answers 405.
//     The relay stays: clients compare its shared copy of the configs
//     with the tunnel's, so that a target cannot hand one client a key of
//     its own unnoticed.
//
//   - Oblivious HTTP relays (RFC 9458): each configured OHTTPRelay maps
//     one path of the proxy to one gateway, so no client chooses where its
//     request goes (§8.2). POST there runs the query relay's stages with
//     the OHTTP media types and forwards the Encapsulated Request; GET
//     relays the gateway's key configuration, checked and cached once for
//     every client like configs, and reached through the tunnel by clients
//     that check it (see OHTTPRelay). Counted apart, by result.
//
// Redirects from targets are never followed: their status and body reach
// the client like any other response (their Location header does not).
//
// Construction, serving and errors follow the conventions of the module's
// public packages: [New] checks a [Config] whose zero fields mean the
// documented defaults; the [Handler] is a plain http.Handler, served by the
// caller over HTTP/2 and HTTP/3 (as cmd/odoh-proxy does), and Close
// releases its upstream connections; what it counts goes to a [Metrics]
// interface (nil counts nothing). The vocabulary it shares with clients
// and targets (paths, media types, size limits, the Cache-Control rule,
// Proxy-Status error types) is package odoh's.
package proxy

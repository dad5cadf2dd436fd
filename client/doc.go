// Package client is the client side of Oblivious DNS over HTTPS (RFC 9230):
// a Client that seals DNS queries to a target's key and posts them through
// a proxy, a Stub that serves a whole machine's DNS over ODoH, and DNS stamps
// (sdns://) for interoperating with the DNS-stub ecosystem.
//
// A Client is made with New(Config). Its proxies are RFC 6570 URI templates
// such as https://proxy.example/dns-query{?targethost,targetpath}, plain
// https URLs, or relay stamps; its targets are https URLs or target stamps.
// Each query goes through a random healthy proxy to a random healthy
// target; on a transport error, a 5xx or a bad response the next
// query-attempt uses another pair. A proxy and a target with the same
// registrable domain are refused, since one operator would then learn both
// who asks and what. Without a proxy the client refuses to work unless
// Config.Direct says otherwise.
//
// # Configs that no proxy can forge
//
// Two properties hold by default: the target never sees the client's
// address, and the proxy can never make the client use a key that the
// target did not publish. Configs are therefore fetched in a TLS session
// of the client's own with the target, carried through the proxy by
// CONNECT (ConfigViaTunnel): the target's certificate is verified for its
// name, so the proxy relays bytes it can neither read nor alter, and the
// target sees the proxy's address. The same configs are also fetched from
// the proxy's config relay, which caches one copy for all its clients, and
// the client uses only a config present in both: a target that handed one
// client a key of its own, to link that client's queries, is refused
// (ErrInconsistentConfigs), with a tolerance for the moment of a key
// rotation (see ConfigViaTunnel). A proxy without the tunnel gets
// ErrNoTunnel, not a silent fallback to configs it could have forged; the
// other sources are the target itself (ConfigFromTarget: authenticated,
// but the target sees the client's address), static configs
// (ConfigStatic), and the relay alone for targets whose config key is
// pinned (ConfigViaRelay). Pins (Config.Pins, and target stamps with
// hashes) restrict a target to certificates and config keys whatever path
// the configs come by; see Pin.
//
// Fetched configs are cached for their max-age. A fetch that fails is
// remembered for a backoff (from 5 to 10 s, doubling up to 5 minutes), so
// that queries meanwhile fail at once with its error, and it is logged at
// warn level once, not at every query. A 401 means the target rotated its
// keys: the configs are fetched again, once for all concurrent queries,
// and each query is retried once (with ConfigFromTarget and a proxy: in
// the background, and the query fails). A 400 is never retried.
//
// Responses are checked as RFC 9230 §4.3 and §7 require (content type,
// message type, nonce length, authentication, zero padding), redirects are
// never followed, and requests carry no cookies, no User-Agent and no
// client state: only Content-Type, Accept and Cache-Control. Queries travel
// with DNS ID 0 and are padded to 128-byte blocks (RFC 8467).
//
// HTTP/2 is the default transport; Config.HTTP3 swaps in quic-go's HTTP/3
// transport, and the configs tunnel then rides HTTP/3 too.
//
// # Conventions
//
// Construction, serving and errors follow the conventions of the module's
// public packages. [New] and [NewStub] check a Config whose zero fields
// mean the documented defaults, and Logger nil means slog.Default(). A
// Client holds connections, released by [Client.Close]; a [Stub] owns its
// sockets: [Stub.Serve] answers until its context is cancelled, then
// drains and returns nil, and [Stub.Close] releases them. Errors wrap the
// sentinels below ([ErrNoProxy], [ErrConfig], …) and those of package odoh,
// for errors.Is; a non-200 answer is an [*HTTPError], whose ProxyStatus
// odoh.ParseProxyStatus reads; [Classify] names an error's cause without
// names or addresses, for logs and metrics. The vocabulary the client
// shares with proxies and targets (paths, media types, size limits, the
// Cache-Control rule, Proxy-Status) is package odoh's.
package client

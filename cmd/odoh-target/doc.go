package main

import (
	"flag"

	"github.com/odohd/odoh/internal/clidoc"
)

// command documents odoh-target around its flag set: the -h help, the
// -help-all reference and the manual page odoh-target(8).
func command(fs *flag.FlagSet) *clidoc.Command {
	return &clidoc.Command{
		Name:    "odoh-target",
		Usage:   []string{"odoh-target -cert FILE -key FILE [-seed-file FILE] [options]"},
		Summary: "Oblivious DNS over HTTPS target (RFC 9230)",
		Intro: "An Oblivious DNS over HTTPS target (RFC 9230): it decrypts the queries that " +
			"ODoH proxies relay, resolves them (-local-zone, a cache, then -upstream) and " +
			"encrypts the answers, over HTTP/2 and HTTP/3. It logs no queries and no addresses.",
		Description: description,
		Flags:       fs,
		Brief:       []string{"listen", "cert", "key", "seed-file", "upstream", "local-zone", "doh", "admin"},
		Short: map[string]string{
			"listen":     "serve HTTPS (TCP) and HTTP/3 (UDP) on ADDR",
			"cert":       "TLS certificate chain (PEM)",
			"key":        "TLS private key (PEM)",
			"seed-file":  "the 32-byte key seed that replicas share (odoh keygen)",
			"upstream":   "resolver: udp://, tcp://, tls:// or https:// (repeatable)",
			"local-zone": "RFC 1035 zone answered before the upstreams",
			"doh":        "also serve plain DNS over HTTPS on /dns-query",
			"admin":      "serve /healthz, /readyz, /metrics",
		},
		Values: map[string][]string{
			"log-level":  {"debug", "info", "warn", "error"},
			"log-format": {"json", "text"},
		},
		Examples: []clidoc.Example{
			{Command: "odoh keygen /etc/odoh/seed"},
			{Command: "odoh-target -cert cert.pem -key key.pem -seed-file /etc/odoh/seed \\\n-upstream udp://127.0.0.1:53"},
		},
		More:      "Every flag: odoh-target -help-all, or odoh-target(8). Each flag also reads ODOH_TARGET_<FLAG>.",
		EnvPrefix: "ODOH_TARGET",
		Sections: []clidoc.Section{
			{Title: "Upstreams", Text: upstreams},
			{Title: "Signals", Text: "SIGTERM or SIGINT fail /readyz, then drain in-flight requests (-lameduck, -drain-timeout). " +
				"SIGHUP reloads the certificate, the seed and the zone; one that fails to load keeps its previous state, and the log names it."},
			{Title: "Exit status", Text: "0 after a clean stop, 1 when the daemon could not start or stopped on an error, 2 for a usage error."},
		},
	}
}

const description = `odoh-target is an Oblivious DNS over HTTPS target (RFC 9230). It serves POST /dns-query (ODoH; plain DNS over HTTPS too with -doh) and GET /.well-known/odohconfigs over HTTPS (and, with -ohttp-authority, DNS over Oblivious HTTP at /.well-known/ohttp-gateway), with HTTP/2 on TCP and HTTP/3 on UDP at the same address, and resolves queries from -local-zone, then the cache, then the upstreams. It logs no queries and no client addresses.

Keys derive from the 32-byte secret in -seed-file and the time (one key per -rotate period), so replicas sharing the seed accept each other's keys; the previous, the current and the next period's keys are accepted (the next one absorbs clock skew between replicas). Without -seed-file the keys are random (development only). odoh keygen writes a seed.

Logs are JSON by default (-log-format); durations in them are Go duration strings such as "1.5s" or "24h0m0s", as the flags take them.`

const upstreams = `-upstream takes:
  udp://HOST[:53]          UDP, retried over TCP when truncated
  tcp://HOST[:53]          TCP, persistent connections
  tls://HOST[:853]         DNS over TLS, persistent connections
  https://HOST/dns-query   DNS over HTTPS over HTTP/2

Several -upstream flags fail over in order; an upstream that fails -upstream-max-fails times in a row is skipped for -upstream-backoff (doubling up to -upstream-max-backoff while probes fail). Without any -upstream, the nameservers of -resolv-conf are used.`

package main

import (
	"flag"

	"github.com/odohd/odoh/internal/clidoc"
)

// command documents odoh-proxy around its flag set: the -h help, the
// -help-all reference and the manual page odoh-proxy(8).
func command(fs *flag.FlagSet) *clidoc.Command {
	return &clidoc.Command{
		Name:    "odoh-proxy",
		Usage:   []string{"odoh-proxy -cert FILE -key FILE -allow-target HOST[:PORT]... [options]"},
		Summary: "Oblivious DNS over HTTPS relay (the proxy of RFC 9230)",
		Intro: "An Oblivious DNS over HTTPS relay (the proxy of RFC 9230): it forwards " +
			"encrypted queries from clients to allowed targets, with nothing from the " +
			"client but the encrypted body. It keeps no per-request logs.",
		Description: description,
		Flags:       fs,
		Brief:       []string{"listen", "cert", "key", "allow-target", "allow-file", "ca", "target-http3", "admin"},
		Short: map[string]string{
			"listen":       "serve HTTPS (TCP) and HTTP/3 (UDP) on ADDR",
			"cert":         "TLS certificate chain (PEM)",
			"key":          "TLS private key (PEM)",
			"allow-target": "forward to this target; port 443 unless given (repeatable)",
			"allow-file":   "more allowed targets, one per line (reloaded on SIGHUP)",
			"ca":           "also trust this CA for the targets' certificates",
			"target-http3": "talk HTTP/3 to targets (falls back to HTTP/2)",
			"admin":        "serve /healthz, /readyz, /metrics",
		},
		Values: map[string][]string{
			"log-level":  {"debug", "info", "warn", "error"},
			"log-format": {"json", "text"},
		},
		Examples: []clidoc.Example{
			{Command: "odoh-proxy -cert cert.pem -key key.pem -allow-target odoh.example"},
			{Comment: "also an Oblivious HTTP relay for Firefox's DoH over OHTTP to dns.example (POST and keys at https://relay.example/ohttp/dns.example)",
				Command: "odoh-proxy -cert cert.pem -key key.pem -allow-target dns.example \\\n-ohttp-gateway https://dns.example/.well-known/ohttp-gateway", ManOnly: true},
			{Comment: "clients then use", Command: "odoh -proxy 'https://relay.example/dns-query{?targethost,targetpath}' \\\n-target https://odoh.example/dns-query example.com"},
		},
		More:      "Every flag: odoh-proxy -help-all, or odoh-proxy(8). Each flag also reads ODOH_PROXY_<FLAG>.",
		EnvPrefix: "ODOH_PROXY",
		Sections: []clidoc.Section{
			{Title: "Signals", Text: "SIGTERM or SIGINT fail /readyz, then drain in-flight requests on both protocols (-lameduck, -drain-timeout). " +
				"SIGHUP reloads the certificate and the allowlist (-allow-file); one that fails to load keeps its previous state, and the log names it."},
			{Title: "Exit status", Text: "0 after a clean stop, 1 when the daemon could not start or stopped on an error, 2 for a usage error."},
		},
	}
}

const description = `odoh-proxy is an Oblivious DNS over HTTPS relay (the "proxy" of RFC 9230). It serves, over HTTPS with HTTP/2 on TCP and HTTP/3 on UDP at the same address,
  POST /dns-query?targethost=HOST[:PORT]&targetpath=%2Fdns-query   (also /proxy)
  GET  /.well-known/odohconfigs?targethost=HOST[:PORT]
  CONNECT HOST:PORT   (a TLS tunnel to an allowed target, for configs
                       fetches that the relay cannot forge; -no-tunnel
                       refuses it)
  POST, GET /ohttp/HOST[:PORT]   (with -ohttp-gateway: an Oblivious HTTP
                       relay, RFC 9458, to that one gateway, and its keys)

and forwards queries to the target over pooled HTTP/2 (or, with -target-http3, HTTP/3) connections, with nothing from the client but the encrypted body: no cookies, no authorization, no forwarding or tracing headers, no user agent, no address. It keeps no per-request logs; /metrics carries no addresses or names. Refused requests are logged at info level, at most one line per target and reason every 10 seconds, naming the target and the reason but never the client.

Targets must be on the allowlist (-allow-target, -allow-file): HOST or HOST:PORT, port 443 when none is given. Names are resolved by the proxy and refused if they point at loopback, private, link-local or other special addresses; an entry that is itself an IP literal allows exactly that address. -allow-open makes an open relay (ports from -open-ports, special addresses still refused): only for deliberate public service.

With -target-http3 the proxy talks HTTP/3 to targets. A target that does not answer over QUIC is remembered for 5 minutes, during which its requests go over HTTP/2 at once, so that only the first request after that waits for the QUIC handshake.

Logs are JSON by default (-log-format); durations in them are Go duration strings such as "1.5s" or "10s", as the flags take them.`

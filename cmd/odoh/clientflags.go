package main

import (
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/odoh"
)

// clientFlags are the flags of every subcommand that talks ODoH: query,
// configs and stub.
type clientFlags struct {
	proxies, targets        urlList
	ohttpRelay, ohttpKeys   string
	ohttpDoH                string
	resolve, pins           cli.Strings
	direct, http3           bool
	viaRelay, fromTarget    bool
	allowSame               bool
	caFile, configHex, file string
	timeout                 time.Duration
	log                     cli.LogConfig
}

// add defines the client flags on fs; timeout is the subcommand's
// default -timeout.
func (o *clientFlags) add(fs *flag.FlagSet, timeout time.Duration) {
	fs.Var(&o.proxies, "proxy", "the oblivious proxy (relay) at `URL`: its URI template, such as https://HOST/dns-query{?targethost,targetpath}, an https URL, HOST[:PORT] for that template, or a relay stamp sdns://hQ… (repeatable; also @URL; a stamp's certificate hashes are enforced and its address dialled)")
	fs.Var(&o.targets, "target", "the target: `URL` https://HOST[:PORT]/dns-query, HOST[:PORT] for that URL, or a target stamp sdns://BQ… (repeatable)")
	fs.StringVar(&o.ohttpRelay, "ohttp-relay", "", "also (or only) query a DoH resolver through the Oblivious HTTP relay at `URL` (RFC 9458; Firefox's network.trr.ohttp.relay_uri), such as odoh-proxy's https://relay.example/ohttp/dns.example")
	fs.StringVar(&o.ohttpDoH, "ohttp-doh", "", "the DoH `URL` of the resolver behind the OHTTP gateway (Firefox's network.trr.ohttp.uri)")
	fs.StringVar(&o.ohttpKeys, "ohttp-keys", "", "the OHTTP gateway's key configuration at `URL` (network.trr.ohttp.config_uri; default: the relay URL, odoh-proxy's copy shared by every client); unless it is at the gateway's own origin, the keys are also fetched from the gateway through the relay's tunnel and must agree")
	fs.BoolVar(&o.direct, "direct", false, "query the target without a proxy: the target then sees your address with your queries")
	fs.BoolVar(&o.http3, "http3", false, "talk HTTP/3 (QUIC) instead of HTTP/2")
	fs.StringVar(&o.caFile, "ca", "", "trust the CA certificates in `FILE` (PEM) instead of the system roots")
	fs.Var(&o.resolve, "resolve", "dial ADDR for HOST:PORT instead of resolving HOST, like curl --resolve (`HOST:PORT:ADDR`; repeatable)")
	fs.DurationVar(&o.timeout, "timeout", timeout, "give up a query after this long, failover and configs fetch included")
	fs.BoolVar(&o.fromTarget, "configs-from-target", false, "fetch target configs from the target itself, for a proxy without the configs tunnel: the target then sees your address at each fetch and could tie a query that follows to you (the default with -direct)")
	fs.BoolVar(&o.viaRelay, "configs-via-relay", false, "fetch target configs through the proxy's config relay alone; needs a key pin (-pin HOST=key:HEX) for each target")
	fs.Var(&o.pins, "pin", "accept only a certificate chain holding a TBSCertificate with this SHA-256 hash (`HOST=cert:HEX`), or only configs with this key id (HOST=key:HEX, as odoh configs prints it) (repeatable)")
	fs.StringVar(&o.configHex, "config", "", "use this ObliviousDoHConfigs (`HEX`) instead of fetching configs")
	fs.StringVar(&o.file, "config-file", "", "use the ObliviousDoHConfigs in `FILE` (binary or hex) instead of fetching configs")
	fs.BoolVar(&o.allowSame, "allow-same-operator", false, "accept a proxy and a target that look like one operator's (same registrable domain or IP address): for testing, there is no privacy then")
	o.log.AddFlags(fs)
}

// clientShort are the short help's texts of the client flags.
var clientShort = map[string]string{
	"proxy":  "the proxy (relay): URL, URI template, HOST[:PORT] or stamp",
	"target": "the target: URL, HOST[:PORT] or stamp",
	"direct": "no proxy: the target then sees your address",
	"http3":  "HTTP/3 (QUIC) instead of HTTP/2",
	"ca":     "trust this CA instead of the system roots",
	"json":   "JSON output, a line per question",
}

// shortTexts returns clientShort with more.
func shortTexts(more map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range clientShort {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// expandProxy turns the CLI's shorthands into a proxy template:
// HOST[:PORT] and an https URL without a path get the template of this
// project's proxies, /dns-query{?targethost,targetpath}.
func expandProxy(s string) string {
	if strings.HasPrefix(s, "sdns://") || strings.ContainsAny(s, "{}") {
		return s
	}
	if !strings.Contains(s, "://") && bareHost(s) {
		return "https://" + s + odoh.QueryPath + "{?targethost,targetpath}"
	}
	if u, err := url.Parse(s); err == nil && u.Scheme == "https" && u.Host != "" && u.Path == "" && u.RawQuery == "" {
		return strings.TrimSuffix(s, "/") + odoh.QueryPath + "{?targethost,targetpath}"
	}
	return s
}

// expandTarget turns HOST[:PORT] into https://HOST[:PORT]/dns-query.
func expandTarget(s string) string {
	if strings.HasPrefix(s, "sdns://") || strings.Contains(s, "://") || !bareHost(s) {
		return s
	}
	return "https://" + s + odoh.QueryPath
}

// bareHost reports whether s is a host name or IP address with an
// optional port, and nothing else.
func bareHost(s string) bool {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return false
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return true
	}
	return strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == "" && strings.Contains(host, ".") || host == "localhost"
}

// config builds the client's configuration from the flags.
func (o *clientFlags) config(logger *slog.Logger) (client.Config, error) {
	co := client.Config{
		Direct:            o.direct,
		HTTP3:             o.http3,
		Timeout:           o.timeout,
		AllowSameOperator: o.allowSame,
		Logger:            logger,
	}
	for _, p := range o.proxies {
		co.Proxies = append(co.Proxies, expandProxy(p))
	}
	for _, t := range o.targets {
		co.Targets = append(co.Targets, expandTarget(t))
	}
	switch {
	case (o.ohttpRelay == "") != (o.ohttpDoH == ""):
		return co, usageErr("an OHTTP resolver needs both -ohttp-relay and -ohttp-doh")
	case o.ohttpKeys != "" && o.ohttpRelay == "":
		return co, usageErr("-ohttp-keys needs -ohttp-relay and -ohttp-doh")
	case o.ohttpRelay != "":
		co.OHTTP = []client.OHTTPTarget{{Relay: o.ohttpRelay, Keys: o.ohttpKeys, DoH: o.ohttpDoH}}
	}
	if len(o.targets) == 0 && len(co.OHTTP) == 0 {
		return co, usageErr("no target: give -target URL (or set ODOH_TARGET), such as -target https://odoh.example/dns-query, or -ohttp-relay and -ohttp-doh")
	}
	if len(o.proxies) == 0 && !o.direct && len(o.targets) > 0 {
		return co, usageErr("no proxy: give -proxy URL (or @URL, or set ODOH_PROXY), or -direct to let the target see your address")
	}
	if o.timeout <= 0 {
		return co, usageErr("-timeout must be positive")
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return co, fmt.Errorf("reading -ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return co, usageErr("-ca %s holds no PEM certificate: give the CA's certificate, the file with -----BEGIN CERTIFICATE-----", o.caFile)
		}
		co.RootCAs = pool
	}
	if len(o.resolve) > 0 {
		co.Resolve = map[string]string{}
		for _, r := range o.resolve {
			hp, addr, err := parseResolve(r)
			if err != nil {
				return co, err
			}
			co.Resolve[hp] = addr
		}
	}
	for _, s := range o.pins {
		p, err := client.ParsePin(s)
		if err != nil {
			return co, usageErr("-pin: %v", err)
		}
		co.Pins = append(co.Pins, p)
	}
	static := o.configHex != "" || o.file != ""
	switch {
	case o.viaRelay && o.fromTarget:
		return co, usageErr("-configs-via-relay and -configs-from-target exclude each other: give one")
	case (o.viaRelay || o.fromTarget) && static:
		return co, usageErr("-config and -config-file fetch nothing: drop -configs-via-relay and -configs-from-target")
	case o.configHex != "" && o.file != "":
		return co, usageErr("-config and -config-file exclude each other: give one")
	case static:
		b, err := o.staticConfigs()
		if err != nil {
			return co, err
		}
		co.ConfigSource, co.StaticConfigs = client.ConfigStatic, b
	case o.fromTarget:
		co.ConfigSource = client.ConfigFromTarget
	case o.viaRelay:
		co.ConfigSource = client.ConfigViaRelay
	}
	// Otherwise the client's default: the tunnel with a proxy, the target
	// in direct mode (the target sees your address anyway).
	return co, nil
}

func (o *clientFlags) staticConfigs() ([]byte, error) {
	if o.configHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(o.configHex))
		if err != nil {
			return nil, usageErr("-config: not hex (%v): give the configs as odoh configs prints them", err)
		}
		return b, checkConfigs("-config", b)
	}
	b, err := os.ReadFile(o.file)
	if err != nil {
		return nil, fmt.Errorf("reading -config-file: %w", err)
	}
	if h, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
		b = h // the file may hold hex too
	}
	return b, checkConfigs("-config-file "+o.file, b)
}

// checkConfigs refuses static configs that do not parse, naming the flag
// that gave them and where good ones come from.
func checkConfigs(flag string, b []byte) error {
	if _, err := odoh.ParseConfigs(b); err != nil {
		return usageErr("%s: not an ObliviousDoHConfigs (%v): give the target's configs as odoh configs prints them "+
			"(the hex after \"hex\"), or the body of its /.well-known/odohconfigs", flag, strings.TrimPrefix(err.Error(), "odoh: "))
	}
	return nil
}

// parseResolve reads HOST:PORT:ADDR, where ADDR may be an IPv6 literal in
// brackets, into the client's "host:port" → "addr:port" entry.
func parseResolve(r string) (string, string, error) {
	i := strings.IndexByte(r, ':')
	j := -1
	if i >= 0 {
		j = strings.IndexByte(r[i+1:], ':')
	}
	if i <= 0 || j <= 0 {
		return "", "", usageErr("-resolve %q: want HOST:PORT:ADDR, such as odoh.example:443:192.0.2.1", r)
	}
	hp, addr := r[:i+1+j], strings.Trim(r[i+2+j:], "[]")
	_, port, _ := net.SplitHostPort(hp)
	if net.ParseIP(addr) == nil {
		return "", "", usageErr("-resolve %q: %q is not an IP address; want HOST:PORT:ADDR", r, addr)
	}
	return hp, net.JoinHostPort(addr, port), nil
}

// newClient builds the client of the flags.
func (o *clientFlags) newClient(logger *slog.Logger) (*client.Client, error) {
	co, err := o.config(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.New(co)
	if err != nil {
		return nil, &exitError{2, err} // a flag value the client refused
	}
	return c, nil
}

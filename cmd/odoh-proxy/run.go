package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/daemon"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
)

const usageText = `Usage: odoh-proxy -cert FILE -key FILE -allow-target HOST[:PORT]... [options]

odoh-proxy is an Oblivious DNS over HTTPS relay (the "proxy" of RFC 9230). It
serves, over HTTPS with HTTP/2 on TCP and HTTP/3 on UDP at the same address,

  POST /dns-query?targethost=HOST[:PORT]&targetpath=%2Fdns-query   (also /proxy)
  GET  /.well-known/odohconfigs?targethost=HOST[:PORT]
  CONNECT HOST:PORT   (a TLS tunnel to an allowed target, for configs fetches
                       that the relay cannot forge; -no-tunnel refuses it)
  POST, GET /ohttp/HOST[:PORT]   (with -ohttp-gateway: an Oblivious HTTP relay,
                       RFC 9458, to that one gateway, and its keys)

and forwards queries to the target over pooled HTTP/2 (or HTTP/3) connections,
with nothing from the client but the encrypted body: no cookies, no
authorization, no forwarding or tracing headers, no user agent, no address.
It keeps no per-request logs; /metrics carries no addresses or names.

Targets must be on the allowlist (-allow-target, -allow-file): HOST or
HOST:PORT, port 443 when none is given. Names are resolved by the proxy and
refused if they point at loopback, private, link-local or other special
addresses; an entry that is itself an IP literal allows exactly that address.
-allow-open makes an open relay (ports from -open-ports, special addresses
still refused): only for deliberate public service.

Every flag can also be set with an environment variable: ODOH_PROXY_ and the
flag name in upper case with dashes as underscores (ODOH_PROXY_ALLOW_TARGET);
a flag on the command line wins. Lists are comma-separated there.

Signals: SIGTERM or SIGINT fail /readyz, then drain in-flight requests on both
protocols (-lameduck, -drain-timeout); SIGHUP reloads the certificate and the
allowlist (-allow-file), keeping the old one of each that fails to load.

Options:
`

const examplesText = `
Examples:
  # A relay for two targets:
  odoh-proxy -listen :443 -cert cert.pem -key key.pem \
      -allow-target odoh.example -allow-target odoh2.example:8443

  # Allowlist in a file (one HOST[:PORT] per line, # comments), reloaded on SIGHUP:
  odoh-proxy -cert cert.pem -key key.pem -allow-file /etc/odoh/targets
  kill -HUP $(pidof odoh-proxy)

  # A target on this machine, named by its IP literal, with a private CA,
  # over HTTP/3:
  odoh-proxy -cert cert.pem -key key.pem -allow-target 127.0.0.1:8443 \
      -ca target-ca.pem -target-http3

  # Also an Oblivious HTTP relay for Firefox's DoH over OHTTP to dns.example
  # (POST and keys at https://relay.example/ohttp/dns.example):
  odoh-proxy -cert cert.pem -key key.pem -allow-target dns.example \
      -ohttp-gateway https://dns.example/.well-known/ohttp-gateway

  # Clients use the RFC 6570 template
  #   https://relay.example/dns-query{?targethost,targetpath}
  # and fetch configs through the relay:
  curl 'https://relay.example/.well-known/odohconfigs?targethost=odoh.example'
`

// config is the parsed command line.
type config struct {
	server                                               daemon.ServerFlags
	allowFile, caFile, name, resolver                    string
	allow, openPorts, ohttpGateways                      cli.Strings
	allowOpen, allowSpecial, targetHTTP3, noTunnel       bool
	maxTunnels, maxTunnelsPerClient                      int
	tunnelTimeout                                        time.Duration
	maxBody, maxResponseBody, maxConcurrent, clientBurst int
	maxClients, maxPerClient, maxConfigsFetches          int
	maxCachedConfigs                                     int
	bodyReadTimeout                                      time.Duration
	clientRate                                           float64
	connectTimeout, tlsTimeout, responseTimeout          time.Duration
	configsMinAge, configsMaxAge                         time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := newFlagSet(c, stderr)
	if err := c.server.Parse(fs, args, c.check); err != nil {
		return nil, err
	}
	return c, nil
}

// newFlagSet defines every flag on a new flag set, bound to c.
func newFlagSet(c *config, stderr io.Writer) *flag.FlagSet {
	fs := daemon.NewFlagSet("odoh-proxy", stderr, usageText, examplesText)
	c.server.AddFlags(fs, "ODOH_PROXY", admin.ProxyAddr)
	// A relay also holds connections to targets: say which ones these bound.
	fs.Lookup("max-streams").Usage = "concurrent requests per client HTTP/2 or HTTP/3 connection"
	fs.Lookup("idle-timeout").Usage = "close client connections idle this long"
	fs.Var(&c.allow, "allow-target", "allow forwarding to `HOST[:PORT]` (repeatable; port 443 by default)")
	fs.StringVar(&c.allowFile, "allow-file", "", "read more allowed targets from `FILE`, one per line (reloaded on SIGHUP)")
	fs.Var(&c.ohttpGateways, "ohttp-gateway", "relay Oblivious HTTP (RFC 9458) at /ohttp/HOST[:PORT] to the gateway `[PATH=]URL` (repeatable; its host must be allowed; PATH= picks another relay path)")
	fs.BoolVar(&c.allowOpen, "allow-open", false, "forward to any target (an open relay; -open-ports and address checks still apply)")
	fs.Var(&c.openPorts, "open-ports", "`PORTS` an open relay may use (comma-separated; default 443)")
	fs.BoolVar(&c.allowSpecial, "allow-special-addrs", false, "let target names resolve to loopback/private/special addresses")
	fs.StringVar(&c.caFile, "ca", "", "also trust the CA certificates in `FILE` (PEM) for targets")
	fs.StringVar(&c.resolver, "resolver", "", "resolve target names with the DNS server at `ADDR` (host:port; default: the system's)")
	fs.BoolVar(&c.targetHTTP3, "target-http3", false, "talk to targets over HTTP/3 instead of HTTP/2")
	fs.BoolVar(&c.noTunnel, "no-tunnel", false, "refuse CONNECT: clients then cannot fetch configs that this relay cannot forge")
	fs.IntVar(&c.maxTunnels, "max-tunnels", proxy.DefaultMaxTunnels, "CONNECT tunnels open at once, all clients together (more: 429)")
	fs.IntVar(&c.maxTunnelsPerClient, "max-tunnels-per-client", proxy.DefaultMaxTunnelsPerClient, "CONNECT tunnels one client may have open (more: 429)")
	fs.DurationVar(&c.tunnelTimeout, "tunnel-timeout", proxy.DefaultTunnelTimeout, "bound a CONNECT tunnel's life")
	fs.StringVar(&c.name, "name", proxy.DefaultName, "the proxy's `NAME` in Proxy-Status headers")
	fs.IntVar(&c.maxBody, "max-body", odoh.MaxQuerySize, "largest request body in `bytes` (larger: 413)")
	fs.IntVar(&c.maxResponseBody, "max-response-body", odoh.MaxResponseSize, "largest target response body in `bytes` (larger: 502)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", proxy.DefaultConnectTimeout, "bound resolving and connecting to a target")
	fs.DurationVar(&c.tlsTimeout, "tls-timeout", proxy.DefaultTLSHandshakeTimeout, "bound the TLS handshake with a target")
	fs.DurationVar(&c.responseTimeout, "response-timeout", proxy.DefaultResponseTimeout, "bound a whole exchange with a target (then 504)")
	fs.IntVar(&c.maxConcurrent, "max-concurrent", proxy.DefaultMaxConcurrent, "requests forwarded at once, all clients together (more: 429)")
	fs.Float64Var(&c.clientRate, "client-rate", proxy.DefaultClientRate, "requests per second per client IP or IPv6 /64 (0: no limit)")
	fs.IntVar(&c.clientBurst, "client-burst", proxy.DefaultClientBurst, "requests a client may send at once")
	fs.IntVar(&c.maxClients, "max-clients", proxy.DefaultMaxClients, "clients the rate limiter remembers (bounds its memory)")
	fs.IntVar(&c.maxPerClient, "max-concurrent-per-client", proxy.DefaultMaxConcurrentPerClient, "requests one client IP (or IPv6 /64) may have in progress, body reading included (more: 429; -1: no cap)")
	fs.DurationVar(&c.bodyReadTimeout, "body-read-timeout", proxy.DefaultBodyReadTimeout, "bound reading a request body (then 408)")
	fs.IntVar(&c.maxConfigsFetches, "max-configs-fetches", proxy.DefaultMaxConfigsFetches, "configs fetches from targets running at once (more: 503)")
	fs.IntVar(&c.maxCachedConfigs, "max-cached-configs", proxy.DefaultMaxCachedConfigs, "targets whose configs the relay caches (bounds its memory)")
	fs.DurationVar(&c.configsMinAge, "configs-min-age", proxy.DefaultConfigsMinAge, "cache relayed target configs at least this long")
	fs.DurationVar(&c.configsMaxAge, "configs-max-age", proxy.DefaultConfigsMaxAge, "cache relayed target configs at most this long")
	return fs
}

// check validates the daemon's own flags.
func (c *config) check() error {
	switch {
	case len(c.allow) == 0 && c.allowFile == "" && !c.allowOpen:
		return errors.New("no targets: give -allow-target or -allow-file (or -allow-open for an open relay)")
	case c.maxBody <= 0 || c.maxResponseBody <= 0:
		return errors.New("-max-body and -max-response-body must be positive")
	case c.connectTimeout <= 0 || c.tlsTimeout <= 0 || c.responseTimeout <= 0:
		return errors.New("timeouts must be positive")
	case c.maxPerClient == 0 || c.bodyReadTimeout <= 0 || c.maxConfigsFetches <= 0 || c.maxCachedConfigs <= 0:
		return errors.New("-max-concurrent-per-client must not be 0; -body-read-timeout, -max-configs-fetches and -max-cached-configs must be positive")
	case c.maxConcurrent <= 0 || c.maxClients <= 0 || c.clientBurst <= 0 || c.clientRate < 0:
		return errors.New("-max-concurrent, -max-clients and -client-burst must be positive, -client-rate not negative")
	case c.configsMinAge <= 0 || c.configsMaxAge < c.configsMinAge:
		return errors.New("need 0 < -configs-min-age <= -configs-max-age")
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return daemon.FlagsError(stderr, "odoh-proxy", err)
	}
	return c.server.Run("odoh-proxy", version, stdout, stderr, func(logger *slog.Logger) error {
		return serve(ctx, c, logger, signals)
	})
}

// policy builds the target policy from the flags and the allow file.
func (c *config) policy() (proxy.Policy, error) {
	p := proxy.Policy{
		Allow:             append([]string(nil), c.allow...),
		AllowOpen:         c.allowOpen,
		AllowSpecialAddrs: c.allowSpecial,
	}
	for _, s := range c.openPorts {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return p, fmt.Errorf("-open-ports: bad port %q", s)
		}
		p.OpenPorts = append(p.OpenPorts, uint16(n))
	}
	if c.allowFile != "" {
		more, err := readAllowFile(c.allowFile)
		if err != nil {
			return p, err
		}
		p.Allow = append(p.Allow, more...)
	}
	return p, nil
}

// readAllowFile reads one HOST[:PORT] per line; blank lines and text after
// '#' are ignored.
func readAllowFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading allowlist: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading allowlist: %w", err)
	}
	return out, nil
}

func (c *config) rootCAs() (*x509.CertPool, error) {
	if c.caFile == "" {
		return nil, nil // the system pool
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("reading -ca: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificates", c.caFile)
	}
	return pool, nil
}

func (c *config) netResolver() *net.Resolver {
	if c.resolver == "" {
		return nil
	}
	addr := c.resolver
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func serve(ctx context.Context, c *config, logger *slog.Logger, signals <-chan os.Signal) error {
	d, err := daemon.New(daemon.Config{Flags: &c.server, Logger: logger, Signals: signals})
	if err != nil {
		return err
	}
	defer d.Close()
	pol, err := c.policy()
	if err != nil {
		return err
	}
	roots, err := c.rootCAs()
	if err != nil {
		return err
	}
	if c.allowOpen {
		logger.Warn("-allow-open: this is an open relay")
	}
	pm, err := metrics.NewProxy(d.Registry)
	if err != nil {
		return err
	}
	rate := c.clientRate
	if rate == 0 {
		rate = -1 // the flag's 0 means no limit
	}
	h, err := proxy.New(proxy.Config{
		Name:                   c.name,
		Policy:                 pol,
		RootCAs:                roots,
		Resolver:               c.netResolver(),
		TargetHTTP3:            c.targetHTTP3,
		MaxRequestBody:         int64(c.maxBody),
		MaxResponseBody:        int64(c.maxResponseBody),
		ConnectTimeout:         c.connectTimeout,
		TLSHandshakeTimeout:    c.tlsTimeout,
		ResponseTimeout:        c.responseTimeout,
		MaxConcurrent:          c.maxConcurrent,
		ClientRate:             rate,
		ClientBurst:            c.clientBurst,
		MaxClients:             c.maxClients,
		MaxConcurrentPerClient: c.maxPerClient,
		BodyReadTimeout:        c.bodyReadTimeout,
		MaxConfigsFetches:      c.maxConfigsFetches,
		MaxCachedConfigs:       c.maxCachedConfigs,
		ConfigsMinAge:          c.configsMinAge,
		ConfigsMaxAge:          c.configsMaxAge,
		OHTTP:                  c.ohttpRelays(),
		DisableTunnel:          c.noTunnel,
		MaxTunnels:             c.maxTunnels,
		MaxTunnelsPerClient:    c.maxTunnelsPerClient,
		TunnelTimeout:          c.tunnelTimeout,
		Logger:                 logger,
		Metrics:                pm,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	return d.Serve(ctx, daemon.Service{
		Name:    "odoh-proxy",
		Version: version,
		Handler: h,
		Reload:  func() error { return reloadPolicy(c, h, logger) },
		LogAttrs: []any{"targets", len(pol.Allow), "open", c.allowOpen, "ohttp_relays", len(c.ohttpGateways),
			"target_http3", c.targetHTTP3},
	})
}

// reloadPolicy re-reads the allowlist on SIGHUP, keeping the old one if
// the new one fails to load.
func reloadPolicy(c *config, h *proxy.Handler, logger *slog.Logger) error {
	pol, err := c.policy()
	if err == nil {
		err = h.SetPolicy(pol)
	}
	if err != nil {
		return fmt.Errorf("allowlist kept: %w", err)
	}
	logger.Info("allowlist reloaded", "targets", len(pol.Allow))
	return nil
}

// ohttpRelays reads -ohttp-gateway: [PATH=]URL.
func (c *config) ohttpRelays() []proxy.OHTTPRelay {
	var out []proxy.OHTTPRelay
	for _, g := range c.ohttpGateways {
		r := proxy.OHTTPRelay{Gateway: g}
		if p, u, ok := strings.Cut(g, "="); ok && strings.HasPrefix(p, "/") {
			r.Path, r.Gateway = p, u
		}
		out = append(out, r)
	}
	return out
}

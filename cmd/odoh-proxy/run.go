package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/daemon"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
)

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

// parseFlags parses the command line; the documentation it returns, with
// the flag set, serves FlagsError.
func parseFlags(args []string) (*config, *clidoc.Command, error) {
	c := &config{}
	fs := newFlagSet(c)
	doc := command(fs)
	if err := c.server.Parse(fs, args, c.check); err != nil {
		return nil, doc, err
	}
	return c, doc, nil
}

// newFlagSet defines every flag on a new flag set, bound to c.
func newFlagSet(c *config) *flag.FlagSet {
	fs := daemon.NewFlagSet("odoh-proxy")
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
	fs.StringVar(&c.resolver, "resolver", "", "resolve target names with the DNS server at `ADDR` (IP address, port 53 unless given; default: the system's)")
	fs.BoolVar(&c.targetHTTP3, "target-http3", false, "talk to targets over HTTP/3 instead of HTTP/2; a target that fails the QUIC handshake (within -connect-timeout) gets that request, and its requests for the next 5m, over HTTP/2")
	fs.BoolVar(&c.noTunnel, "no-tunnel", false, "refuse CONNECT: clients then cannot fetch configs that this relay cannot forge")
	fs.IntVar(&c.maxTunnels, "max-tunnels", proxy.DefaultMaxTunnels, "CONNECT tunnels open at once, all clients together (more: 429)")
	fs.IntVar(&c.maxTunnelsPerClient, "max-tunnels-per-client", proxy.DefaultMaxTunnelsPerClient, "CONNECT tunnels one client may have open (more: 429)")
	fs.DurationVar(&c.tunnelTimeout, "tunnel-timeout", proxy.DefaultTunnelTimeout, "bound a CONNECT tunnel's life")
	fs.StringVar(&c.name, "name", proxy.DefaultName, "the proxy's `NAME` in Proxy-Status headers")
	fs.IntVar(&c.maxBody, "max-body", odoh.MaxQuerySize, "largest request body in `BYTES` (larger: 413)")
	fs.IntVar(&c.maxResponseBody, "max-response-body", odoh.MaxResponseSize, "largest target response body in `BYTES` (larger: 502)")
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
	if len(c.allow) > 0 {
		// The allowlist file is read at start and on SIGHUP; the flags'
		// entries are checked now, as flags.
		if err := (proxy.Policy{Allow: c.allow}).Check(); err != nil {
			return fmt.Errorf("-allow-target: %s", strings.TrimPrefix(err.Error(), "proxy: "))
		}
	}
	if c.resolver != "" {
		addr, err := resolverAddr(c.resolver)
		if err != nil {
			return err
		}
		c.resolver = addr
	}
	return nil
}

// resolverAddr checks -resolver: an IP address with an optional port (53
// by default), as the resolver's dialer needs it.
func resolverAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "53"
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", fmt.Errorf("-resolver %q: want the IP address of a DNS server, with an optional port (such as 127.0.0.1 or [::1]:5353): the proxy cannot look its resolver's name up", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("-resolver %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	c, doc, err := parseFlags(args)
	if err != nil {
		return daemon.FlagsError(stdout, stderr, doc, err)
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
// '#' are ignored. A bad entry is refused with the file and its line, so
// that the operator finds it (at start, or in the log of a SIGHUP).
func readAllowFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading -allow-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if err := (proxy.Policy{Allow: []string{line}}).Check(); err != nil {
			return nil, fmt.Errorf("-allow-file %s line %d: %s", path, n, strings.TrimPrefix(err.Error(), "proxy: "))
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading -allow-file %s: %w", path, err)
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
			"target_http3", c.targetHTTP3, "resolver", cmp.Or(c.resolver, "system")},
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
		return &cli.ReloadError{Part: "allowlist", Err: err}
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

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/certs"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

const usageText = `Usage: odoh-target -cert FILE -key FILE [options]

odoh-target is an Oblivious DNS over HTTPS target (RFC 9230). It serves
POST /dns-query (ODoH; plain DNS over HTTPS too with -doh) and
GET /.well-known/odohconfigs over HTTPS, with HTTP/2 on TCP and HTTP/3 on UDP
at the same address, and resolves queries from -local-zone, then the cache,
then the upstreams. It logs no queries and no client addresses.

Keys derive from the 32-byte secret in -seed-file and the time (one key per
-rotate period), so replicas sharing the seed accept each other's keys; the
previous, the current and the next period's keys are accepted (the next one
absorbs clock skew between replicas). Without -seed-file the keys are random
(development only).

Every flag can also be set with an environment variable: ODOH_TARGET_ and the
flag name in upper case with dashes as underscores (ODOH_TARGET_SEED_FILE);
a flag on the command line wins. Lists (-upstream) are comma-separated there.

Signals: SIGTERM or SIGINT fail /readyz, then drain in-flight requests
(-lameduck, -drain-timeout); SIGHUP reloads the certificate, the seed and the
zone, keeping the old one of each that fails to load.

Options:
`

const examplesText = `
Upstream URLs:
  udp://HOST[:53]          UDP, retried over TCP when truncated
  tcp://HOST[:53]          TCP, persistent connections
  tls://HOST[:853]         DNS over TLS, persistent connections
  https://HOST/dns-query   DNS over HTTPS over HTTP/2
Several -upstream flags fail over in order; an upstream that fails
-upstream-max-fails times in a row is skipped for -upstream-backoff (doubling
up to -upstream-max-backoff while probes fail). Without any -upstream, the
nameservers of /etc/resolv.conf are used.

Examples:
  # Generate a seed once and share it with every replica:
  head -c 32 /dev/urandom > /etc/odoh/seed && chmod 600 /etc/odoh/seed

  # A target resolving through a local Unbound, with daily keys:
  odoh-target -listen :443 -cert cert.pem -key key.pem \
      -seed-file /etc/odoh/seed -upstream udp://127.0.0.1:53

  # Also serve plain DoH, answer internal names from a zone file, cache:
  odoh-target -cert cert.pem -key key.pem -doh -local-zone internal.zone \
      -upstream tls://9.9.9.9:853 -upstream https://dns.example/dns-query \
      -cache-size 10000

  # The same with environment variables (e.g. in a container):
  ODOH_TARGET_CERT=cert.pem ODOH_TARGET_KEY=key.pem \
  ODOH_TARGET_UPSTREAM=udp://10.0.0.53,udp://10.0.0.54 odoh-target
`

// config is the parsed command line.
type config struct {
	listen, certFile, keyFile, seedFile, localZone, adminAddr string
	resolvConf                                                string
	upstreams                                                 cli.Strings
	rotate, upstreamTimeout, queryTimeout, cacheMaxTTL        time.Duration
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	drainTimeout, lameduck                                    time.Duration
	upstreamBackoff, upstreamMaxBackoff                       time.Duration
	upstreamMaxFails                                          int
	doh, noHTTP3, showVersion                                 bool
	cacheSize, maxBody, maxHeaderBytes, maxStreams            int
	paddingBlock                                              int
	log                                                       cli.LogConfig
	runtime                                                   cli.Runtime
	// onServing, if set, gets the query server and the admin address once
	// they listen: tests use it to break the server from under the daemon.
	// No flag sets it.
	onServing func(srv *httpserve.Server, adminAddr string)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("odoh-target", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", ":443", "serve HTTPS (TCP) and HTTP/3 (UDP) on `ADDR`")
	fs.StringVar(&c.certFile, "cert", "", "TLS certificate chain `FILE` (PEM; required)")
	fs.StringVar(&c.keyFile, "key", "", "TLS private key `FILE` (PEM; required)")
	fs.Var(&c.upstreams, "upstream", "upstream resolver `URL` (repeatable; failover in order)")
	fs.StringVar(&c.resolvConf, "resolv-conf", "/etc/resolv.conf", "`FILE` naming the system resolvers used without -upstream")
	fs.DurationVar(&c.upstreamTimeout, "upstream-timeout", target.DefaultUpstreamTimeout, "bound one attempt at one upstream")
	fs.IntVar(&c.upstreamMaxFails, "upstream-max-fails", target.DefaultMaxFails, "mark an upstream down after `N` failures in a row (-1: never)")
	fs.DurationVar(&c.upstreamBackoff, "upstream-backoff", target.DefaultMinBackoff, "skip a down upstream this long, doubling while it keeps failing")
	fs.DurationVar(&c.upstreamMaxBackoff, "upstream-max-backoff", target.DefaultMaxBackoff, "cap the doubling of -upstream-backoff")
	fs.DurationVar(&c.queryTimeout, "query-timeout", target.DefaultQueryTimeout, "bound one query, failover included (then SERVFAIL)")
	fs.StringVar(&c.seedFile, "seed-file", "", "`FILE` holding the 32-byte key seed (raw bytes or 64 hex digits); empty: random keys")
	fs.DurationVar(&c.rotate, "rotate", target.DefaultRotationPeriod, "key rotation `period`")
	fs.BoolVar(&c.doh, "doh", false, "also serve plain DNS over HTTPS (RFC 8484) on /dns-query")
	fs.StringVar(&c.localZone, "local-zone", "", "RFC 1035 zone `FILE` answered before the upstreams")
	fs.IntVar(&c.cacheSize, "cache-size", 0, "cache up to `N` upstream answers (0: no cache)")
	fs.DurationVar(&c.cacheMaxTTL, "cache-max-ttl", target.DefaultCacheMaxTTL, "keep cached answers at most this long")
	fs.StringVar(&c.adminAddr, "admin", admin.DefaultAddr, "serve /healthz, /readyz and /metrics on `ADDR` (plain HTTP; \"off\" disables)")
	fs.IntVar(&c.maxBody, "max-body", target.DefaultMaxBodySize, "largest request body in `bytes` (larger: 413)")
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", httpserve.DefaultMaxHeaderBytes, "largest request header block in `bytes`")
	fs.IntVar(&c.maxStreams, "max-streams", httpserve.DefaultMaxConcurrentStreams, "concurrent requests per HTTP/2 or HTTP/3 connection")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", httpserve.DefaultReadHeaderTimeout, "bound reading request headers")
	fs.DurationVar(&c.readTimeout, "read-timeout", httpserve.DefaultReadTimeout, "bound reading a request")
	fs.DurationVar(&c.writeTimeout, "write-timeout", httpserve.DefaultWriteTimeout, "bound writing a response")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", httpserve.DefaultIdleTimeout, "close connections idle this long")
	fs.IntVar(&c.paddingBlock, "padding-block", odoh.ResponseBlockSize, "pad answers to a multiple of `N` bytes (RFC 8467; -1: no padding)")
	fs.BoolVar(&c.noHTTP3, "no-http3", false, "serve TCP only (no HTTP/3, no Alt-Svc)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", cli.DefaultDrainTimeout, "on SIGTERM, let in-flight requests finish this long")
	fs.DurationVar(&c.lameduck, "lameduck", 0, "on SIGTERM, fail /readyz this long before draining")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	c.runtime.AddFlags(fs, "ODOH_TARGET")
	c.log.AddFlags(fs)
	// A daemon's logs go to collectors: JSON by default.
	c.log.Format = "json"
	fs.Lookup("log-format").DefValue = "json"
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), examplesText)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := cli.ApplyEnv(fs, "ODOH_TARGET"); err != nil {
		return nil, err
	}
	if c.showVersion {
		return c, nil
	}
	switch {
	case c.certFile == "" || c.keyFile == "":
		return nil, errors.New("-cert and -key are required")
	case c.rotate < target.MinRotationPeriod:
		return nil, fmt.Errorf("-rotate %v is shorter than %v", c.rotate, target.MinRotationPeriod)
	case c.maxBody <= 0 || c.maxBody > target.DefaultMaxBodySize:
		return nil, fmt.Errorf("-max-body must be between 1 and %d", target.DefaultMaxBodySize)
	case c.cacheSize < 0:
		return nil, errors.New("-cache-size must not be negative")
	case c.upstreamTimeout <= 0 || c.queryTimeout <= 0:
		return nil, errors.New("timeouts must be positive")
	case c.upstreamMaxFails == 0 || c.upstreamBackoff <= 0 || c.upstreamMaxBackoff < c.upstreamBackoff:
		return nil, errors.New("-upstream-max-fails must not be 0, -upstream-backoff must be positive and at most -upstream-max-backoff")
	case c.maxStreams <= 0 || c.maxHeaderBytes <= 0:
		return nil, errors.New("-max-streams and -max-header-bytes must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "odoh-target: %v\n", err)
		return 2
	}
	if c.showVersion {
		fmt.Fprintln(stdout, buildinfo.Read(version).String("odoh-target"))
		return 0
	}
	logger, err := c.log.Logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "odoh-target: %v\n", err)
		return 2
	}
	stop, err := c.runtime.Apply()
	if err != nil {
		fmt.Fprintf(stderr, "odoh-target: %v\n", err)
		return 1
	}
	defer stop()
	if err := serve(ctx, c, logger); err != nil {
		logger.Error("odoh-target stopped", "err", err)
		return 1
	}
	return 0
}

// readSeed reads a seed file: 32 raw bytes, or 64 hex digits (with an
// optional trailing newline). Its content is never logged.
func readSeed(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seed: %w", err)
	}
	if len(b) == odoh.SeedSize {
		return b, nil
	}
	digits := bytes.TrimRight(b, "\r\n")
	if len(digits) == 2*odoh.SeedSize {
		seed := make([]byte, odoh.SeedSize)
		if _, err := hex.Decode(seed, digits); err == nil {
			return seed, nil
		}
	}
	return nil, fmt.Errorf("seed file %s: want %d raw bytes or %d hex digits", path, odoh.SeedSize, 2*odoh.SeedSize)
}

// daemon is the running target's state.
type daemon struct {
	c        *config
	log      *slog.Logger
	certs    *certs.Reloader
	keys     *target.Keyring
	chain    *target.Chain
	metrics  *target.Metrics
	draining atomic.Bool
}

func serve(ctx context.Context, c *config, logger *slog.Logger) error {
	// Handle signals before "serving" is logged: an orchestrator may stop
	// the daemon as soon as it reads that line.
	signals, stopSignals := cli.NotifySignals()
	defer stopSignals()
	d := &daemon{c: c, log: logger}
	var err error
	if d.certs, err = certs.NewReloader(c.certFile, c.keyFile); err != nil {
		return fmt.Errorf("loading certificate: %w", err)
	}
	seed, err := readSeed(c.seedFile)
	if err != nil {
		return err
	}
	if seed == nil {
		logger.Warn("no -seed-file: random keys, replicas will not share them (development only)")
	}
	if d.keys, err = target.NewKeyring(target.KeyringConfig{Seed: seed, Period: c.rotate}); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	if d.metrics, err = target.NewMetrics(reg, d.keys); err != nil {
		return err
	}
	upstreams := []string(c.upstreams)
	if len(upstreams) == 0 {
		if upstreams, err = target.SystemUpstreams(c.resolvConf); err != nil {
			return fmt.Errorf("no -upstream and no system resolver: %w", err)
		}
	}
	pool, err := target.NewUpstreams(upstreams, target.UpstreamOptions{
		Timeout:    c.upstreamTimeout,
		MaxFails:   c.upstreamMaxFails,
		MinBackoff: c.upstreamBackoff,
		MaxBackoff: c.upstreamMaxBackoff,
		Metrics:    d.metrics,
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	d.chain = &target.Chain{Upstream: pool}
	if c.cacheSize > 0 {
		d.chain.Cache = target.NewCache(c.cacheSize, c.cacheMaxTTL, nil)
	}
	if c.localZone != "" {
		z, err := target.LoadZone(c.localZone)
		if err != nil {
			return err
		}
		d.chain.SetZone(z)
		d.metrics.SetZoneRecords(z.Len())
	}
	h := &target.Handler{
		Keys:         d.keys,
		Resolver:     d.chain,
		DoH:          c.doh,
		MaxBodySize:  c.maxBody,
		QueryTimeout: c.queryTimeout,
		PaddingBlock: c.paddingBlock,
		Metrics:      d.metrics,
		Logger:       logger,
	}
	srv := &httpserve.Server{
		Addr:                 c.listen,
		Handler:              h,
		TLSConfig:            d.certs.TLSConfig(),
		Logger:               logger,
		DisableHTTP3:         c.noHTTP3,
		ReadHeaderTimeout:    c.readHeaderTimeout,
		ReadTimeout:          c.readTimeout,
		WriteTimeout:         c.writeTimeout,
		IdleTimeout:          c.idleTimeout,
		MaxHeaderBytes:       c.maxHeaderBytes,
		MaxConcurrentStreams: uint32(c.maxStreams),
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	var adm *admin.Server
	if c.adminAddr != "off" && c.adminAddr != "" {
		adm, err = admin.New(admin.Options{Addr: c.adminAddr, Namespace: "odoh", Registry: reg,
			Build: buildinfo.Read(version), Ready: d.ready, Logger: logger})
		if err != nil {
			srv.Close()
			return err
		}
		if err := adm.Listen(); err != nil {
			srv.Close()
			return err
		}
	}
	logger.Info("odoh-target serving",
		"listen", srv.BoundAddr(), "admin", adminAddr(adm), "http3", !c.noHTTP3, "doh", c.doh,
		"upstreams", len(upstreams), "local_zone_records", zoneLen(d.chain.Zone()),
		"cache_size", c.cacheSize, "rotate", c.rotate.String(), "seeded", seed != nil,
		"version", buildinfo.Read(version).Version)

	// If either server stops serving on its own, the other stops too and
	// the daemon exits non-zero, rather than answering /readyz with nothing
	// serving queries. The admin server shuts down last.
	servers := cli.NewGroup(srv)
	if adm != nil {
		servers = cli.NewGroup(srv, adm)
	}
	if c.onServing != nil {
		c.onServing(srv, adminAddr(adm))
	}
	return cli.Run(ctx, logger, cli.Hooks{
		Start:        servers.Serve,
		Stopping:     func() { d.draining.Store(true) },
		Lameduck:     c.lameduck,
		DrainTimeout: c.drainTimeout,
		Drain:        servers.Shutdown,
		Reload:       d.reload,
		Signals:      signals,
	})
}

func adminAddr(a *admin.Server) string {
	if a == nil {
		return "off"
	}
	return a.BoundAddr()
}

func zoneLen(z *target.Zone) int {
	if z == nil {
		return 0
	}
	return z.Len()
}

// ready is the readiness check of /readyz.
func (d *daemon) ready() error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	if _, err := d.keys.Current(); err != nil {
		return fmt.Errorf("no keys: %w", err)
	}
	return nil
}

// reload re-reads the certificate, the seed and the zone. Each that fails
// keeps its old state; the errors are returned together.
func (d *daemon) reload() error {
	var errs []error
	if err := d.certs.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("certificate kept: %w", err))
	} else {
		d.log.Info("certificate reloaded", "not_after", d.certs.Certificate().Leaf.NotAfter)
	}
	if d.c.seedFile != "" {
		seed, err := readSeed(d.c.seedFile)
		if err == nil {
			err = d.keys.SetSeed(seed)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("seed kept: %w", err))
		} else {
			d.log.Info("seed reloaded")
		}
	}
	if d.c.localZone != "" {
		z, err := target.LoadZone(d.c.localZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("zone kept: %w", err))
		} else {
			d.chain.SetZone(z)
			d.metrics.SetZoneRecords(z.Len())
			d.log.Info("local zone reloaded", "records", z.Len())
		}
	}
	return errors.Join(errs...)
}

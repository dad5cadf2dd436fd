package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/metrics"
)

// stubFlags are the stub's own flags.
type stubFlags struct {
	clientFlags
	listen, admin                           string
	cacheSize, maxInFlight, maxInFlightName int
	maxTCPConns, maxTCPConnsPerClient       int
	maxCacheTTL, maxNegCacheTTL             time.Duration
	failureCacheTTL, staleAge, drainTimeout time.Duration
	runtime                                 cli.Runtime
	healthcheck                             bool
}

func stubCommand() *subcommand {
	fs := newFlagSet("stub")
	var o stubFlags
	o.add(fs, client.DefaultStubTimeout)
	fs.StringVar(&o.listen, "listen", client.DefaultStubAddr, "serve DNS on `ADDR`, UDP and TCP")
	fs.IntVar(&o.cacheSize, "cache-size", client.DefaultCacheSize, "cache up to `N` answers and failures (0: no cache, every query is forwarded, uncoalesced)")
	fs.DurationVar(&o.maxCacheTTL, "max-cache-ttl", client.DefaultMaxCacheTTL, "keep cached answers at most this long")
	fs.DurationVar(&o.maxNegCacheTTL, "cache-max-negative-ttl", client.DefaultMaxNegativeCacheTTL, "keep NXDOMAIN and NODATA answers at most this long (RFC 2308)")
	fs.DurationVar(&o.failureCacheTTL, "cache-failure-ttl", client.DefaultFailureCacheTTL, "cache SERVFAIL and failures from 1s, doubling while they last, up to this (1s to 5m, RFC 9520)")
	fs.DurationVar(&o.staleAge, "cache-stale-age", client.DefaultStaleAge, "answer from entries expired at most this long while the target cannot answer, marked stale (RFC 8767; at most 24h; 0: never)")
	fs.IntVar(&o.maxInFlight, "max-inflight", client.DefaultMaxInFlight, "forward at most `N` queries at once; beyond, SERVFAIL at once")
	fs.IntVar(&o.maxInFlightName, "max-inflight-per-name", client.DefaultMaxInFlightPerName, "forward at most `N` queries for one name at once")
	fs.IntVar(&o.maxTCPConns, "max-tcp-conns", client.DefaultStubMaxTCPConns, "hold at most `N` TCP connections at once; more are reset (-1: no cap)")
	fs.IntVar(&o.maxTCPConnsPerClient, "max-tcp-conns-per-client", client.DefaultStubMaxTCPConnsPerClient, "hold at most `N` TCP connections from one IP address (IPv6: one /64); more are reset (-1: no cap)")
	fs.StringVar(&o.admin, "admin", admin.StubAddr, "serve /healthz, /readyz, /metrics and POST /cache/flush on `ADDR` (plain HTTP; off disables)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Second, "on SIGTERM, let queries in flight finish this long")
	fs.BoolVar(&o.healthcheck, "healthcheck", false, "ask the running stub's -admin listener for /readyz, exit 0 if ready and 1 if not (a container HEALTHCHECK)")
	o.runtime.AddFlags(fs, envPrefix)
	doc := &clidoc.Command{
		Name:    "stub",
		Usage:   []string{"odoh stub [options] -proxy URL -target URL"},
		Summary: "serve DNS on a local address (UDP and TCP), answering through ODoH",
		Intro: "Serves DNS on -listen and answers every query through the proxy and the " +
			"target, from a cache by the target's rules. It never falls back to plain DNS: " +
			"when ODoH fails it answers a stale answer, marked as such, or SERVFAIL.",
		Flags: fs,
		Brief: []string{"listen", "proxy", "target", "http3", "ca", "cache-size", "admin"},
		Short: shortTexts(map[string]string{
			"cache-size": "cache up to N answers (0: none)",
			"admin":      "serve /metrics, /readyz, POST /cache/flush on ADDR (off: none)",
		}),
		Values:    logValues,
		EnvPrefix: envPrefix,
		Examples: []clidoc.Example{
			{Command: "odoh stub -listen 127.0.0.1:53 -proxy relay.example -target odoh.example"},
			{Comment: "then", Command: "dig @127.0.0.1 example.com"},
		},
		More: "Every flag: odoh help stub, or odoh(1). Each flag also reads ODOH_<FLAG>.",
	}
	return &subcommand{doc: doc, run: func(e *env, args []string) error {
		if len(args) != 0 {
			return usageErr("stub takes no arguments")
		}
		if o.healthcheck {
			return runHealthcheck(e, &o)
		}
		return runStub(e, &o)
	}}
}

func runStub(e *env, o *stubFlags) error {
	if o.maxTCPConns == 0 || o.maxTCPConns < -1 || o.maxTCPConnsPerClient == 0 || o.maxTCPConnsPerClient < -1 {
		return usageErr("-max-tcp-conns and -max-tcp-conns-per-client must be positive, or -1 for no cap")
	}
	logger, err := o.log.Logger(e.stderr)
	if err != nil {
		return &exitError{2, err}
	}
	logger = withHints(logger)
	// Only the stub is a long-running process worth tuning.
	stop, err := o.runtime.Apply()
	if err != nil {
		return err
	}
	defer stop()
	c, err := o.newClient(logger)
	if err != nil {
		return err
	}
	defer c.Close()
	cacheSize := o.cacheSize
	if cacheSize == 0 {
		cacheSize = -1 // the flag's 0 means disabled
	}
	stale := o.staleAge
	if stale == 0 {
		stale = -1 // the flag's 0 means never
	}
	reg := prometheus.NewRegistry()
	cm, err := metrics.NewCache(reg, "odoh_stub_cache")
	if err != nil {
		return err
	}
	st, err := client.NewStub(client.StubConfig{
		Client: c, Addr: o.listen, CacheSize: cacheSize, MaxCacheTTL: o.maxCacheTTL,
		MaxNegativeCacheTTL: o.maxNegCacheTTL, FailureCacheTTL: o.failureCacheTTL, StaleAge: stale,
		MaxInFlight: o.maxInFlight, MaxInFlightPerName: o.maxInFlightName, Timeout: o.timeout,
		MaxTCPConns: o.maxTCPConns, MaxTCPConnsPerClient: o.maxTCPConnsPerClient,
		Metrics: cm, Logger: logger,
	})
	if err != nil {
		return cli.ListenError(err, o.listen, "-listen")
	}
	servers := []cli.Server{st}
	var draining atomic.Bool
	adminAddr := "off"
	if o.admin != "off" {
		adm, err := admin.New(admin.Options{Addr: o.admin, Namespace: "odoh", Registry: reg,
			Build: buildinfo.Read(version), Logger: logger, Cache: st,
			Ready: func() error {
				if draining.Load() {
					return errors.New("draining")
				}
				return nil
			}})
		if err == nil {
			err = adm.Listen()
		}
		if err != nil {
			_ = st.Close()
			return cli.ListenError(err, o.admin, "-admin")
		}
		servers = append(servers, adm) // last: /metrics stays up while queries drain
		adminAddr = adm.BoundAddr()
	}
	if o.fromTarget && len(o.proxies) > 0 {
		// Fetch the configs now, so that no direct fetch to the target
		// precedes the first query; the client refreshes them in the
		// background from then on.
		wctx, cancel := context.WithTimeout(e.ctx, o.timeout)
		if _, err := c.Configs(wctx); err != nil {
			logger.Warn("fetching odoh configs at startup failed; fetching with the first query", "err", err)
		}
		cancel()
	}
	logger.Info("odoh stub listening", "addr", st.Addr(), "admin", adminAddr, "http3", o.http3,
		"proxies", len(o.proxies), "targets", len(o.targets), "cache", cacheSize)
	group := cli.NewGroup(servers...)
	return cli.Run(e.ctx, logger, cli.Hooks{
		Start:    group.Serve,
		Stopping: func() { draining.Store(true) },
		Drain: func(ctx context.Context) error {
			logger.Info("odoh stub draining")
			return group.Shutdown(ctx)
		},
		DrainTimeout: o.drainTimeout,
	})
}

// runHealthcheck is "odoh stub -healthcheck": it asks the stub running
// with the same -admin whether it is ready.
func runHealthcheck(e *env, o *stubFlags) error {
	if err := admin.Check(e.ctx, o.admin); err != nil {
		return fmt.Errorf("stub not ready: %w", err)
	}
	fmt.Fprintln(e.stdout, "ready")
	return nil
}

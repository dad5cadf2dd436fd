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
	"time"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/daemon"
	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

// config is the parsed command line.
type config struct {
	server                                             daemon.ServerFlags
	seedFile, localZone, resolvConf                    string
	upstreams, ohttpAuthorities                        cli.Strings
	rotate, upstreamTimeout, queryTimeout, cacheMaxTTL time.Duration
	cacheMaxNegTTL, cacheFailureTTL, cacheStaleAge     time.Duration
	cacheStaleAnswerTimeout                            time.Duration
	upstreamBackoff, upstreamMaxBackoff                time.Duration
	upstreamMaxFails                                   int
	doh                                                bool
	cacheSize, maxBody, paddingBlock                   int
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
	fs := daemon.NewFlagSet("odoh-target")
	c.server.AddFlags(fs, "ODOH_TARGET", admin.TargetAddr)
	fs.Var(&c.upstreams, "upstream", "upstream resolver `URL` (repeatable; failover in order)")
	fs.StringVar(&c.resolvConf, "resolv-conf", "/etc/resolv.conf", "`FILE` naming the system resolvers used without -upstream")
	fs.DurationVar(&c.upstreamTimeout, "upstream-timeout", target.DefaultUpstreamTimeout, "bound one attempt at one upstream")
	fs.IntVar(&c.upstreamMaxFails, "upstream-max-fails", target.DefaultMaxFails, "mark an upstream down after `N` failures in a row (-1: never)")
	fs.DurationVar(&c.upstreamBackoff, "upstream-backoff", target.DefaultMinBackoff, "skip a down upstream this long, doubling while it keeps failing")
	fs.DurationVar(&c.upstreamMaxBackoff, "upstream-max-backoff", target.DefaultMaxBackoff, "cap the doubling of -upstream-backoff")
	fs.DurationVar(&c.queryTimeout, "query-timeout", target.DefaultQueryTimeout, "bound one query, failover included (then SERVFAIL)")
	fs.StringVar(&c.seedFile, "seed-file", "", "`FILE` holding the 32-byte key seed (raw bytes or 64 hex digits); empty: random keys")
	fs.DurationVar(&c.rotate, "rotate", target.DefaultRotationPeriod, "key rotation `PERIOD`")
	fs.BoolVar(&c.doh, "doh", false, "also serve plain DNS over HTTPS (RFC 8484) on /dns-query")
	fs.Var(&c.ohttpAuthorities, "ohttp-authority", "serve DoH over Oblivious HTTP (RFC 9458) to inner requests for `HOST[:PORT]` (repeatable): the authority of the DoH URL clients reach through their relay")
	fs.StringVar(&c.localZone, "local-zone", "", "RFC 1035 zone `FILE` answered before the upstreams")
	fs.IntVar(&c.cacheSize, "cache-size", target.DefaultCacheSize, "cache up to `N` upstream answers and failures (0: no cache, every query goes upstream)")
	fs.DurationVar(&c.cacheMaxTTL, "cache-max-ttl", target.DefaultCacheMaxTTL, "keep cached answers at most this long")
	fs.DurationVar(&c.cacheMaxNegTTL, "cache-max-negative-ttl", target.DefaultCacheMaxNegativeTTL, "keep NXDOMAIN and NODATA answers at most this long (RFC 2308)")
	fs.DurationVar(&c.cacheFailureTTL, "cache-failure-ttl", target.DefaultCacheFailureTTL, "cache SERVFAIL and timeouts from 1s, doubling while they last, up to this (1s to 5m, RFC 9520)")
	fs.DurationVar(&c.cacheStaleAge, "cache-stale-age", target.DefaultCacheStaleAge, "serve answers expired at most this long while every upstream fails (RFC 8767; 0: never, at most 24h)")
	fs.DurationVar(&c.cacheStaleAnswerTimeout, "cache-stale-answer-timeout", 0, "serve an expired answer stale when the upstreams have not answered within this (RFC 8767 §5 suggests 1.8s; 0: only once every upstream failed, at once while all are down)")
	fs.IntVar(&c.maxBody, "max-body", odoh.MaxQuerySize, "largest request body in `BYTES` (larger: 413)")
	fs.IntVar(&c.paddingBlock, "padding-block", odoh.ResponseBlockSize, "pad answers to a multiple of `N` bytes (RFC 8467; -1: no padding)")
	return fs
}

// check validates the daemon's own flags.
func (c *config) check() error {
	switch {
	case c.rotate < target.MinRotationPeriod:
		return fmt.Errorf("-rotate %v is shorter than %v", c.rotate, target.MinRotationPeriod)
	case c.maxBody <= 0 || c.maxBody > odoh.MaxQuerySize:
		return fmt.Errorf("-max-body must be between 1 and %d", odoh.MaxQuerySize)
	case c.cacheSize < 0:
		return errors.New("-cache-size must not be negative")
	case c.cacheMaxTTL <= 0 || c.cacheMaxNegTTL <= 0:
		return errors.New("-cache-max-ttl and -cache-max-negative-ttl must be positive")
	case c.cacheFailureTTL < dnscache.MinFailureTTL || c.cacheFailureTTL > dnscache.MaxFailureTTL:
		return fmt.Errorf("-cache-failure-ttl must be between %v and %v (RFC 9520)", dnscache.MinFailureTTL, dnscache.MaxFailureTTL)
	case c.cacheStaleAge < 0 || c.cacheStaleAge > dnscache.MaxStaleAge:
		return fmt.Errorf("-cache-stale-age must be between 0 (never) and %v", dnscache.MaxStaleAge)
	case c.cacheStaleAnswerTimeout < 0:
		return errors.New("-cache-stale-answer-timeout must not be negative (0: wait for the upstreams)")
	case c.upstreamTimeout <= 0 || c.queryTimeout <= 0:
		return errors.New("timeouts must be positive")
	case c.upstreamMaxFails == 0 || c.upstreamBackoff <= 0 || c.upstreamMaxBackoff < c.upstreamBackoff:
		return errors.New("-upstream-max-fails must not be 0, -upstream-backoff must be positive and at most -upstream-max-backoff")
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, doc, err := parseFlags(args)
	if err != nil {
		return daemon.FlagsError(stdout, stderr, doc, err)
	}
	return c.server.Run("odoh-target", version, stdout, stderr, func(logger *slog.Logger) error {
		return serve(ctx, c, logger)
	})
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
	return nil, fmt.Errorf("seed file %s holds %d bytes: want %d raw bytes or %d hex digits (odoh keygen FILE writes one)", path, len(b), odoh.SeedSize, 2*odoh.SeedSize)
}

// state is what the target reloads on SIGHUP besides the certificate.
type state struct {
	c       *config
	log     *slog.Logger
	keys    *target.Keyring
	chain   *target.Chain
	metrics *metrics.Target
}

func serve(ctx context.Context, c *config, logger *slog.Logger) error {
	d, err := daemon.New(daemon.Config{Flags: &c.server, Logger: logger})
	if err != nil {
		return err
	}
	defer d.Close()
	st := &state{c: c, log: logger}
	seed, err := readSeed(c.seedFile)
	if err != nil {
		return err
	}
	if seed == nil {
		logger.Warn("no -seed-file: random keys, replicas will not share them (development only)")
	}
	if st.keys, err = target.NewKeyring(target.KeyringConfig{Seed: seed, Period: c.rotate}); err != nil {
		return err
	}
	if st.metrics, err = metrics.NewTarget(d.Registry, st.keys.Epoch); err != nil {
		return err
	}
	upstreams := []string(c.upstreams)
	if len(upstreams) == 0 {
		if upstreams, err = target.SystemUpstreams(c.resolvConf); err != nil {
			return fmt.Errorf("no -upstream and no system resolver: %w", err)
		}
	}
	pool, err := target.NewUpstreams(target.UpstreamsConfig{
		URLs:       upstreams,
		Timeout:    c.upstreamTimeout,
		MaxFails:   c.upstreamMaxFails,
		MinBackoff: c.upstreamBackoff,
		MaxBackoff: c.upstreamMaxBackoff,
		Metrics:    st.metrics,
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	var cache *target.Cache
	if c.cacheSize > 0 {
		cm, err := metrics.NewCache(d.Registry, "odoh_target_cache")
		if err != nil {
			return err
		}
		stale, staleWait := c.cacheStaleAge, c.cacheStaleAnswerTimeout
		if stale == 0 {
			stale = -1 // the flag's 0 means never
		}
		cache, err = target.NewCache(target.CacheConfig{
			Size:               c.cacheSize,
			MaxTTL:             c.cacheMaxTTL,
			MaxNegativeTTL:     c.cacheMaxNegTTL,
			FailureTTL:         c.cacheFailureTTL,
			StaleAge:           stale,
			StaleAnswerTimeout: staleWait,
			Metrics:            cm,
		})
		if err != nil {
			return err
		}
	}
	var zone *target.Zone
	if c.localZone != "" {
		if zone, err = target.LoadZone(c.localZone); err != nil {
			return err
		}
		st.metrics.SetZoneRecords(zone.Len())
	}
	if st.chain, err = target.NewChain(target.ChainConfig{Zone: zone, Upstream: pool, Cache: cache}); err != nil {
		return err
	}
	var flusher admin.Flusher // POST /cache/flush, with a cache
	if cache != nil {
		flusher = cache
	}
	h, err := target.New(target.Config{
		Keys:         st.keys,
		Resolver:     st.chain,
		DoH:          c.doh,
		MaxBodySize:  c.maxBody,
		QueryTimeout: c.queryTimeout,
		PaddingBlock: c.paddingBlock,
		OHTTP:        target.OHTTPConfig{Authorities: c.ohttpAuthorities},
		Metrics:      st.metrics,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	return d.Serve(ctx, daemon.Service{
		Cache:   flusher,
		Name:    "odoh-target",
		Version: version,
		Handler: h,
		Ready:   st.ready,
		Reload:  st.reload,
		LogAttrs: []any{"doh", c.doh, "ohttp", len(c.ohttpAuthorities) > 0,
			"upstreams", len(upstreams), "local_zone_records", zoneLen(st.chain.Zone()),
			"cache_size", c.cacheSize, "rotate", c.rotate.String(), "seeded", seed != nil},
	})
}

func zoneLen(z *target.Zone) int {
	if z == nil {
		return 0
	}
	return z.Len()
}

// ready is the target's own readiness check of /readyz.
func (st *state) ready() error {
	if _, err := st.keys.Current(); err != nil {
		return fmt.Errorf("no keys: %w", err)
	}
	return nil
}

// reload re-reads the seed and the zone. Each that fails keeps its old
// state; the errors are returned together.
func (st *state) reload() error {
	var errs []error
	if st.c.seedFile != "" {
		seed, err := readSeed(st.c.seedFile)
		if err == nil {
			err = st.keys.SetSeed(seed)
		}
		if err != nil {
			errs = append(errs, &cli.ReloadError{Part: "seed", Err: err})
		} else {
			st.log.Info("seed reloaded")
		}
	}
	if st.c.localZone != "" {
		z, err := target.LoadZone(st.c.localZone)
		if err != nil {
			errs = append(errs, &cli.ReloadError{Part: "zone", Err: err})
		} else {
			st.chain.SetZone(z)
			st.metrics.SetZoneRecords(z.Len())
			st.log.Info("local zone reloaded", "records", z.Len())
		}
	}
	return errors.Join(errs...)
}

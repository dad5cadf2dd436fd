package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/odoh"
)

const usage = `Usage:
  odoh [flags] NAME [TYPE]          look NAME up through ODoH (TYPE defaults to A)
  odoh query [flags] NAME [TYPE]    the same
  odoh configs [flags]              print each target's configs (key id, suite, max-age)
  odoh stamp [flags] [sdns://…]     print DNS stamps for -target/-proxy, or decode stamps
  odoh keygen -out FILE [-force]    write a new 32-byte target seed file (mode 0600)
  odoh stub [flags] -listen ADDR    serve DNS on ADDR (UDP+TCP), answering through ODoH

Queries go through a proxy (oblivious relay) to a target, so that the proxy
learns who asks but not what, and the target what but not who. Without a
proxy odoh refuses to run unless -direct is given (the target then sees your
address). A proxy and a target with the same registrable domain are refused.

Options (every flag also reads ODOH_<FLAG>, e.g. ODOH_PROXY, ODOH_TARGET;
a flag beats the environment):
  -proxy URL            proxy URI template (RFC 6570, e.g.
                        https://proxy.example/dns-query{?targethost,targetpath}),
                        plain https URL or relay stamp (a stamp's certificate
                        hashes are enforced and its address is dialled); repeatable
  -target URL           target URL (https://host/dns-query) or target stamp; repeatable
  -ohttp-relay URL      also (or only) query a DoH resolver through this Oblivious HTTP
                        relay (RFC 9458; Firefox's network.trr.ohttp.relay_uri), e.g.
                        odoh-proxy's https://relay.example/ohttp/dns.example
  -ohttp-doh URL        the resolver's DoH URL behind the gateway (network.trr.ohttp.uri)
  -ohttp-keys URL       the gateway's key configuration (network.trr.ohttp.config_uri;
                        default: the relay URL, odoh-proxy's copy shared by every
                        client). Unless it is at the gateway's own origin, the keys
                        are also fetched from the gateway in a TLS session tunnelled
                        through the relay (CONNECT) and must agree with it
  -direct               allow querying the target without a proxy
  -http3                use HTTP/3 instead of HTTP/2
  -ca FILE              PEM CA certificates to trust instead of the system roots
  -resolve HOST:PORT:ADDR  dial ADDR for HOST:PORT (like curl --resolve); repeatable
  -timeout D            timeout of one query (default 5s)
                        Target configs come, by default with -proxy, from the target
                        itself in a TLS session tunnelled through the proxy (CONNECT):
                        the proxy cannot forge them, the target never sees your
                        address, and they are checked against the proxy's relay
  -configs-from-target  fetch target configs from the target itself, for a proxy
                        without the tunnel. Privacy cost: the target sees your
                        address at each fetch and can tie a query sent right after
                        it to you by timing; the stub refreshes configs in the
                        background before they expire, and after a 401 fails that
                        query and fetches again a few seconds later. The default
                        with -direct (the target sees your address anyway)
  -configs-via-relay    fetch target configs through the proxy's config relay
                        alone; needs a key pin (-pin HOST=key:HEX) for each target
  -pin HOST=cert:HEX    accept only a certificate chain for HOST holding a
                        TBSCertificate with this SHA-256 hash; repeatable
  -pin HOST=key:HEX     accept only configs of target HOST with this key id (as
                        "odoh configs" prints it), whatever path they come by
  -config HEX           use this ObliviousDoHConfigs (hex) instead of fetching
  -config-file FILE     use the ObliviousDoHConfigs in FILE instead of fetching
  -allow-same-operator  accept a proxy and target of one operator (testing only)
  -json                 JSON output (query, configs, stamp)
  -log-level L          debug, info, warn, error (default info)
  -log-format F         text or json (default text)
  -version              print the version and exit
Stub options:
  -listen ADDR          UDP and TCP address (default 127.0.0.1:5353)
  -cache-size N         cached answers and failures (default 10000; 0 disables
                        the cache: every query is forwarded, uncoalesced)
  -max-cache-ttl D      cap on cached lifetimes (default 1h)
  -cache-max-negative-ttl D  cap on cached NXDOMAIN/NODATA lifetimes (default 1h)
  -cache-failure-ttl D  cache SERVFAIL and failures from 1s, doubling while they
                        last, up to D (1s to 5m, RFC 9520; default 1s)
  -cache-stale-age D    answer from expired entries at most D old while the
                        target cannot answer, marked stale (RFC 8767; default
                        24h, at most 24h; 0 never)
  -max-inflight N       concurrent queries; beyond it SERVFAIL (default 1024)
  -max-inflight-per-name N  concurrent queries for one name (default 8)
  -max-tcp-conns N      TCP connections held at once; more are reset (default
                        1024; -1: no cap)
  -max-tcp-conns-per-client N  TCP connections from one IP address (IPv6:
                        one /64); more are reset (default 256; -1: no cap)
  -admin ADDR           serve /healthz, /readyz, /metrics and POST /cache/flush
                        on ADDR (plain HTTP; default 127.0.0.1:9553; off disables)
  -healthcheck          ask the running stub's -admin listener for /readyz, exit 0
                        if ready and 1 if not (a container HEALTHCHECK)
  -drain-timeout D      how long SIGTERM waits for queries in flight (default 5s)
  -gc-percent N         Go garbage collector target percent, as GOGC (default 400;
                        used unless GOGC is set)
  -memory-limit MiB     Go soft memory limit, as GOMEMLIMIT (default 800; 0: none;
                        used unless GOMEMLIMIT is set)
  -cpuprofile FILE      write a Go CPU profile of the stub's whole run to FILE
                        (for go tool pprof; off by default)
Stamp options:
  -dnssec, -nolog, -nofilter   properties to set in printed stamps
Keygen options:
  -out FILE             seed file to write
  -force                overwrite an existing file

Exit status: 0 on an answer (NXDOMAIN included), 1 on a transport or
protocol error, 2 on a usage error.

Examples:
  odoh -proxy 'https://proxy.example/dns-query{?targethost,targetpath}' \
       -target https://odoh.example.net/dns-query example.com AAAA
  ODOH_PROXY=https://proxy.example/proxy ODOH_TARGET=https://odoh.example.net/dns-query \
       odoh -json example.com MX
  odoh configs -target https://odoh.example.net/dns-query -direct
  odoh stamp -target https://odoh.example.net/dns-query -nolog
  odoh stamp sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk
  odoh keygen -out /etc/odoh/seed
  odoh stub -listen 127.0.0.1:5353 -proxy https://proxy.example/proxy \
       -target https://odoh.example.net/dns-query
  odoh -ohttp-relay https://relay.example/ohttp/dns.example \
       -ohttp-doh https://dns.example/dns-query example.com   # as Firefox's OHTTP mode
`

// options are every flag of every subcommand; each subcommand reads its own.
type options struct {
	proxies, targets            urlList
	ohttpRelay, ohttpKeys       string
	ohttpDoH                    string
	resolve, pins               cli.Strings
	direct, http3, viaRelay     bool
	fromTarget                  bool
	allowSame, jsonOut, version bool
	caFile, configHex, cfgFile  string
	timeout                     time.Duration
	log                         cli.LogConfig

	listen      string
	admin       string
	healthcheck bool
	cacheSize   int
	maxCacheTTL time.Duration
	maxInFlight int

	maxNegCacheTTL, failureCacheTTL, staleAge time.Duration
	maxInFlightPerName                        int
	maxTCPConns, maxTCPConnsPerClient         int
	drainTimeout                              time.Duration
	runtime                                   cli.Runtime
	dnssec, nolog                             bool
	nofilter                                  bool
	out                                       string
	force                                     bool
}

func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("odoh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.Var(&o.proxies, "proxy", "")
	fs.Var(&o.targets, "target", "")
	fs.StringVar(&o.ohttpRelay, "ohttp-relay", "", "")
	fs.StringVar(&o.ohttpKeys, "ohttp-keys", "", "")
	fs.StringVar(&o.ohttpDoH, "ohttp-doh", "", "")
	fs.Var(&o.resolve, "resolve", "")
	fs.BoolVar(&o.direct, "direct", false, "")
	fs.BoolVar(&o.http3, "http3", false, "")
	fs.Var(&o.pins, "pin", "")
	fs.BoolVar(&o.viaRelay, "configs-via-relay", false, "")
	fs.BoolVar(&o.fromTarget, "configs-from-target", false, "")
	fs.BoolVar(&o.allowSame, "allow-same-operator", false, "")
	fs.BoolVar(&o.jsonOut, "json", false, "")
	fs.BoolVar(&o.version, "version", false, "")
	fs.BoolVar(&o.healthcheck, "healthcheck", false, "")
	fs.StringVar(&o.caFile, "ca", "", "")
	fs.StringVar(&o.configHex, "config", "", "")
	fs.StringVar(&o.cfgFile, "config-file", "", "")
	fs.DurationVar(&o.timeout, "timeout", client.DefaultTimeout, "")
	o.log.AddFlags(fs)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:5353", "")
	fs.IntVar(&o.cacheSize, "cache-size", client.DefaultCacheSize, "")
	fs.DurationVar(&o.maxCacheTTL, "max-cache-ttl", client.DefaultMaxCacheTTL, "")
	fs.IntVar(&o.maxInFlight, "max-inflight", client.DefaultMaxInFlight, "")
	fs.IntVar(&o.maxInFlightPerName, "max-inflight-per-name", client.DefaultMaxInFlightPerName, "")
	fs.IntVar(&o.maxTCPConns, "max-tcp-conns", client.DefaultStubMaxTCPConns, "")
	fs.IntVar(&o.maxTCPConnsPerClient, "max-tcp-conns-per-client", client.DefaultStubMaxTCPConnsPerClient, "")
	fs.DurationVar(&o.maxNegCacheTTL, "cache-max-negative-ttl", client.DefaultMaxNegativeCacheTTL, "")
	fs.DurationVar(&o.failureCacheTTL, "cache-failure-ttl", client.DefaultFailureCacheTTL, "")
	fs.DurationVar(&o.staleAge, "cache-stale-age", client.DefaultStaleAge, "")
	fs.StringVar(&o.admin, "admin", admin.StubAddr, "")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Second, "")
	o.runtime.AddFlags(fs, "ODOH")
	fs.BoolVar(&o.dnssec, "dnssec", false, "")
	fs.BoolVar(&o.nolog, "nolog", false, "")
	fs.BoolVar(&o.nofilter, "nofilter", false, "")
	fs.StringVar(&o.out, "out", "", "")
	fs.BoolVar(&o.force, "force", false, "")
	return fs
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageErr(format string, a ...any) error {
	return &exitError{2, fmt.Errorf(format, a...)}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "query"
	if len(args) > 0 {
		switch args[0] {
		case "query", "configs", "stamp", "keygen", "stub":
			cmd, args = args[0], args[1:]
		case "help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	var o options
	fs := newFlagSet(&o, stderr)
	// Flags may follow positional arguments (odoh NAME A -json).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := cli.ApplyEnv(fs, "ODOH"); err != nil {
		fmt.Fprintln(stderr, "odoh:", err)
		return 2
	}
	if o.version {
		bi := buildinfo.Read(version)
		fmt.Fprintf(stdout, "odoh %s (revision %s, %s)\n", bi.Version, bi.Revision, bi.GoVersion)
		return 0
	}
	logger, err := o.log.Logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "odoh:", err)
		return 2
	}
	switch cmd {
	case "query":
		err = runQuery(ctx, &o, pos, logger, stdout)
	case "configs":
		err = runConfigs(ctx, &o, pos, logger, stdout)
	case "stamp":
		err = runStamp(&o, pos, stdout)
	case "keygen":
		err = runKeygen(&o, pos, stdout)
	case "stub":
		if o.healthcheck {
			err = runHealthcheck(ctx, &o, stdout)
		} else {
			err = runStub(ctx, &o, pos, logger)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "odoh:", err)
		if h := hint(err); h != "" {
			fmt.Fprintln(stderr, "odoh:", h)
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.code == 2 {
				fmt.Fprintln(stderr, "run 'odoh -h' for usage")
			}
			return ee.code
		}
		return 1
	}
	return 0
}

func (o *options) clientOptions(logger *slog.Logger) (client.Config, error) {
	co := client.Config{
		Proxies:           o.proxies,
		Targets:           o.targets,
		Direct:            o.direct,
		HTTP3:             o.http3,
		Timeout:           o.timeout,
		AllowSameOperator: o.allowSame,
		Logger:            logger,
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
		return co, usageErr("no target: give -target URL (or ODOH_TARGET), or -ohttp-relay and -ohttp-doh")
	}
	if len(o.proxies) == 0 && !o.direct && len(o.targets) > 0 {
		return co, usageErr("no proxy: give -proxy URL, or -direct to let the target see your address")
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return co, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return co, fmt.Errorf("no certificate in CA file %s", o.caFile)
		}
		co.RootCAs = pool
	}
	if len(o.resolve) > 0 {
		co.Resolve = map[string]string{}
		for _, r := range o.resolve {
			// HOST:PORT:ADDR, ADDR may be an IPv6 literal in brackets.
			i := strings.IndexByte(r, ':')
			j := -1
			if i >= 0 {
				j = strings.IndexByte(r[i+1:], ':')
			}
			if i < 0 || j < 0 {
				return co, usageErr("-resolve %q: want HOST:PORT:ADDR", r)
			}
			hp, addr := r[:i+1+j], strings.Trim(r[i+2+j:], "[]")
			_, port, _ := net.SplitHostPort(hp)
			co.Resolve[hp] = net.JoinHostPort(addr, port)
		}
	}
	for _, s := range o.pins {
		p, err := client.ParsePin(s)
		if err != nil {
			return co, usageErr("-pin: %v", err)
		}
		co.Pins = append(co.Pins, p)
	}
	if o.viaRelay && o.fromTarget {
		return co, usageErr("-configs-via-relay and -configs-from-target exclude each other")
	}
	if (o.viaRelay || o.fromTarget) && (o.configHex != "" || o.cfgFile != "") {
		return co, usageErr("-config and -config-file fetch nothing: drop -configs-via-relay and -configs-from-target")
	}
	switch {
	case o.configHex != "" || o.cfgFile != "":
		var b []byte
		var err error
		if o.configHex != "" {
			b, err = hex.DecodeString(strings.TrimSpace(o.configHex))
		} else {
			b, err = os.ReadFile(o.cfgFile)
			if err == nil {
				if h, herr := hex.DecodeString(strings.TrimSpace(string(b))); herr == nil {
					b = h // the file may hold hex too
				}
			}
		}
		if err != nil {
			return co, fmt.Errorf("reading configs: %w", err)
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

// hint says what to do about an error, where the flags can help.
func hint(err error) string {
	switch {
	case errors.Is(err, client.ErrNoProxy):
		return "give -proxy URL, or -direct to query the target without one (the target then sees your address)"
	case errors.Is(err, client.ErrNoTunnel):
		return "this proxy cannot carry a configs fetch that it cannot forge: use -configs-from-target " +
			"(the target then sees your address at each fetch), -config or -config-file, " +
			"or -configs-via-relay with -pin HOST=key:HEX"
	case errors.Is(err, client.ErrInconsistentConfigs):
		return "the target may be giving you a key of its own, or the proxy's relay lies: try another proxy or target"
	}
	return ""
}

func newClient(o *options, logger *slog.Logger) (*client.Client, error) {
	co, err := o.clientOptions(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.New(co)
	if err != nil {
		if errors.Is(err, client.ErrNoProxy) || errors.Is(err, client.ErrSameOperator) {
			return nil, &exitError{2, err}
		}
		return nil, err
	}
	return c, nil
}

func runQuery(ctx context.Context, o *options, pos []string, logger *slog.Logger, stdout io.Writer) error {
	if len(pos) < 1 || len(pos) > 2 {
		return usageErr("want NAME [TYPE]")
	}
	qtype := dns.TypeA
	if len(pos) == 2 {
		t, ok := dns.StringToType[strings.ToUpper(pos[1])]
		if !ok {
			return usageErr("unknown type %q", pos[1])
		}
		qtype = t
	}
	name := dns.Fqdn(pos[0])
	if _, ok := dns.IsDomainName(name); !ok {
		return usageErr("bad name %q", pos[0])
	}
	c, err := newClient(o, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = dns.Id()
	q.SetEdns0(dns.DefaultMsgSize, false)
	wire, err := q.Pack()
	if err != nil {
		return err
	}
	r, err := c.Do(ctx, wire)
	if err != nil {
		return err
	}
	a := new(dns.Msg)
	if err := a.Unpack(r.DNS); err != nil {
		return fmt.Errorf("unpacking answer: %w", err)
	}
	if o.jsonOut {
		return json.NewEncoder(stdout).Encode(jsonAnswer(a, r))
	}
	fmt.Fprintf(stdout, "; <<>> odoh %s <<>> %s %s\n", buildinfo.Read(version).Version, name, dns.TypeToString[qtype])
	fmt.Fprint(stdout, a.String())
	fmt.Fprintf(stdout, ";; Query time: %d msec\n", r.Duration.Milliseconds())
	if r.Proxy != "" {
		fmt.Fprintf(stdout, ";; PROXY: %s\n", r.Proxy)
	} else {
		fmt.Fprintf(stdout, ";; PROXY: none (direct: the target saw this address)\n")
	}
	fmt.Fprintf(stdout, ";; TARGET: %s\n", r.Target)
	fmt.Fprintf(stdout, ";; WHEN: %s\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(stdout, ";; MSG SIZE  rcvd: %d\n\n", len(r.DNS))
	return nil
}

type jsonRR struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class"`
	TTL   uint32 `json:"ttl"`
	Data  string `json:"data"`
}

type jsonResult struct {
	Status     string   `json:"status"`
	ID         uint16   `json:"id"`
	Flags      []string `json:"flags"`
	Question   []jsonRR `json:"question"`
	Answer     []jsonRR `json:"answer"`
	Authority  []jsonRR `json:"authority"`
	Additional []jsonRR `json:"additional"`
	TimeMS     float64  `json:"time_ms"`
	Proxy      string   `json:"proxy"`
	Target     string   `json:"target"`
}

func jsonAnswer(a *dns.Msg, r *client.Result) jsonResult {
	conv := func(rrs []dns.RR) []jsonRR {
		out := []jsonRR{}
		for _, rr := range rrs {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			data := strings.TrimPrefix(rr.String(), h.String())
			out = append(out, jsonRR{Name: h.Name, Type: dns.TypeToString[h.Rrtype], Class: dns.ClassToString[h.Class], TTL: h.Ttl, Data: data})
		}
		return out
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{a.Response, "qr"}, {a.Authoritative, "aa"}, {a.Truncated, "tc"}, {a.RecursionDesired, "rd"},
		{a.RecursionAvailable, "ra"}, {a.AuthenticatedData, "ad"}, {a.CheckingDisabled, "cd"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	res := jsonResult{
		Status: dns.RcodeToString[a.Rcode], ID: a.Id, Flags: flags,
		Answer: conv(a.Answer), Authority: conv(a.Ns), Additional: conv(a.Extra),
		TimeMS: float64(r.Duration.Microseconds()) / 1000, Proxy: r.Proxy, Target: r.Target,
	}
	for _, q := range a.Question {
		res.Question = append(res.Question, jsonRR{Name: q.Name, Type: dns.TypeToString[q.Qtype], Class: dns.ClassToString[q.Qclass]})
	}
	return res
}

type jsonConfig struct {
	KeyID string `json:"key_id"`
	KEM   string `json:"kem"`
	KDF   string `json:"kdf"`
	AEAD  string `json:"aead"`
	Hex   string `json:"config"`
}

type jsonTarget struct {
	Target  string       `json:"target"`
	MaxAge  int64        `json:"max_age"`
	Configs []jsonConfig `json:"configs"`
}

func runConfigs(ctx context.Context, o *options, pos []string, logger *slog.Logger, stdout io.Writer) error {
	if len(pos) != 0 {
		return usageErr("configs takes no arguments")
	}
	if len(o.proxies) == 0 && !o.viaRelay {
		// Fetching configs from the target directly needs no proxy: only
		// the address is exposed, and no query follows.
		o.direct = true
	}
	c, err := newClient(o, logger)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tcs, err := c.Configs(ctx)
	if err != nil {
		return err
	}
	var out []jsonTarget
	for _, tc := range tcs {
		jt := jsonTarget{Target: tc.Target, MaxAge: int64(tc.MaxAge / time.Second)}
		for _, cfg := range tc.Configs {
			s := cfg.Suite()
			b, _ := odoh.MarshalConfigs(cfg)
			jt.Configs = append(jt.Configs, jsonConfig{KeyID: hex.EncodeToString(cfg.KeyID()),
				KEM: s.KEM.String(), KDF: s.KDF.String(), AEAD: s.AEAD.String(), Hex: hex.EncodeToString(b)})
		}
		out = append(out, jt)
	}
	if o.jsonOut {
		return json.NewEncoder(stdout).Encode(out)
	}
	for _, jt := range out {
		fmt.Fprintf(stdout, "target %s (max-age %ds)\n", jt.Target, jt.MaxAge)
		for i, c := range jt.Configs {
			fmt.Fprintf(stdout, "  config %d: key_id %s suite %s/%s/%s\n    hex %s\n", i, c.KeyID, c.KEM, c.KDF, c.AEAD, c.Hex)
		}
	}
	return nil
}

type jsonStamp struct {
	Stamp string `json:"stamp"`
	Proto string `json:"proto"`
	Props uint64 `json:"props"`
	Addr  string `json:"addr,omitempty"`
	Host  string `json:"host"`
	Path  string `json:"path"`
	URL   string `json:"url"`
}

func runStamp(o *options, pos []string, stdout io.Writer) error {
	var stamps []client.Stamp
	for _, s := range pos {
		st, err := client.ParseStamp(s)
		if err != nil {
			return &exitError{1, err}
		}
		stamps = append(stamps, st)
	}
	var props uint64
	if o.dnssec {
		props |= client.StampDNSSEC
	}
	if o.nolog {
		props |= client.StampNoLogs
	}
	if o.nofilter {
		props |= client.StampNoFilter
	}
	for _, t := range o.targets {
		u, err := url.Parse(t)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return usageErr("target %q: want https://host[:port]/path", t)
		}
		path := u.EscapedPath()
		if path == "" {
			path = odoh.QueryPath
		}
		stamps = append(stamps, client.Stamp{Proto: client.StampODoHTarget, Props: props, Host: u.Host, Path: path})
	}
	for _, p := range o.proxies {
		// A relay stamp holds host and path only; clients add the query.
		base := p
		if i := strings.Index(p, "{?"); i >= 0 && strings.HasSuffix(p, "}") {
			base = p[:i]
		}
		if strings.ContainsAny(base, "{}") {
			return usageErr("proxy %q: a relay stamp can only express the query form {?targethost,targetpath}", p)
		}
		u, err := url.Parse(base)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
			return usageErr("proxy %q: want https://host[:port]/path", p)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		stamps = append(stamps, client.Stamp{Proto: client.StampODoHRelay, Props: props, Host: u.Host, Path: path})
	}
	if len(stamps) == 0 {
		return usageErr("stamp needs -target, -proxy or sdns:// arguments")
	}
	var out []jsonStamp
	for _, st := range stamps {
		proto := "odoh-target"
		if st.Proto == client.StampODoHRelay {
			proto = "odoh-relay"
		}
		enc, err := st.Encode()
		if err != nil {
			return usageErr("%s %s: %w", proto, st.URL(), err)
		}
		out = append(out, jsonStamp{Stamp: enc, Proto: proto, Props: st.Props, Addr: st.Addr, Host: st.Host, Path: st.Path, URL: st.URL()})
	}
	if o.jsonOut {
		return json.NewEncoder(stdout).Encode(out)
	}
	for _, s := range out {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", s.Proto, s.URL, s.Stamp)
	}
	return nil
}

func runKeygen(o *options, pos []string, stdout io.Writer) error {
	if len(pos) != 0 || o.out == "" {
		return usageErr("keygen wants -out FILE")
	}
	seed := make([]byte, odoh.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(o.out, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; use -force to overwrite it", o.out)
		}
		return err
	}
	// An existing file keeps its mode with O_TRUNC: tighten it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(seed); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// No key ID to show: odoh-target derives a new key from the seed for
	// every rotation period.
	fmt.Fprintf(stdout, "wrote %s (32-byte seed, mode 0600): give it to every odoh-target replica with -seed-file\n", o.out)
	return nil
}

// runHealthcheck is "odoh stub -healthcheck": it asks the stub running
// with the same -admin whether it is ready.
func runHealthcheck(ctx context.Context, o *options, stdout io.Writer) error {
	if err := admin.Check(ctx, o.admin); err != nil {
		return fmt.Errorf("stub not ready: %w", err)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

func runStub(ctx context.Context, o *options, pos []string, logger *slog.Logger) error {
	if len(pos) != 0 {
		return usageErr("stub takes no arguments")
	}
	if o.maxTCPConns == 0 || o.maxTCPConns < -1 || o.maxTCPConnsPerClient == 0 || o.maxTCPConnsPerClient < -1 {
		return usageErr("-max-tcp-conns and -max-tcp-conns-per-client must be positive, or -1 for no cap")
	}
	// Only the stub is a long-running process worth tuning.
	stop, err := o.runtime.Apply()
	if err != nil {
		return err
	}
	defer stop()
	c, err := newClient(o, logger)
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
		MaxInFlight: o.maxInFlight, MaxInFlightPerName: o.maxInFlightPerName, Timeout: o.timeout,
		MaxTCPConns: o.maxTCPConns, MaxTCPConnsPerClient: o.maxTCPConnsPerClient,
		Metrics: cm, Logger: logger,
	})
	if err != nil {
		return err
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
			return err
		}
		servers = append(servers, adm) // last: /metrics stays up while queries drain
		adminAddr = adm.BoundAddr()
	}
	if o.fromTarget && len(o.proxies) > 0 {
		// Fetch the configs now, so that no direct fetch to the target
		// precedes the first query; the client refreshes them in the
		// background from then on.
		wctx, cancel := context.WithTimeout(ctx, o.timeout)
		if _, err := c.Configs(wctx); err != nil {
			logger.Warn("fetching odoh configs at startup failed; fetching with the first query", "err", err)
		}
		cancel()
	}
	logger.Info("odoh stub listening", "addr", st.Addr(), "admin", adminAddr, "http3", o.http3,
		"proxies", len(o.proxies), "targets", len(o.targets), "cache", cacheSize)
	group := cli.NewGroup(servers...)
	return cli.Run(ctx, logger, cli.Hooks{
		Start:    group.Serve,
		Stopping: func() { draining.Store(true) },
		Drain: func(ctx context.Context) error {
			logger.Info("odoh stub draining")
			return group.Shutdown(ctx)
		},
		DrainTimeout: o.drainTimeout,
	})
}

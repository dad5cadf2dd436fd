package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/httpserve"
)

// AdminOff is the -admin value that disables the admin listener.
const AdminOff = "off"

// ServerFlags are the flags every odoh server daemon has: where and how it
// serves, its admin listener, its drain, -version, logging and the Go
// runtime settings.
type ServerFlags struct {
	// Listen is the address of the query server (TCP and UDP).
	Listen string
	// CertFile and KeyFile hold the TLS certificate chain and key (PEM).
	CertFile, KeyFile string
	// AdminAddr is the admin listener's address, or AdminOff (or empty).
	AdminAddr string
	// The limits of internal/httpserve.Server.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes, MaxStreams                                int
	// The connection caps and the reset budget of httpserve.Server
	// (0: its default, -1: none).
	MaxConns, MaxConnsPerClient, MaxRequests, ResetBudget int
	// ProxyProtocolFrom lists the load balancers (CIDR prefixes or
	// addresses) trusted to send PROXY protocol headers; empty: none.
	ProxyProtocolFrom cli.Strings
	proxyFrom         []netip.Prefix
	// NoHTTP3 serves TCP only.
	NoHTTP3 bool
	// DrainTimeout and Lameduck are cli.Hooks' settings for a stop.
	DrainTimeout, Lameduck time.Duration
	// ShowVersion asks Run to print the version and exit.
	ShowVersion bool
	// HelpAll asks for every flag's documentation (Parse returns
	// ErrHelpAll).
	HelpAll bool
	// Healthcheck asks Run to check the readiness of the daemon already
	// running at AdminAddr and exit (admin.Check).
	Healthcheck bool
	// Log and Runtime are the logging and Go runtime flags.
	Log     cli.LogConfig
	Runtime cli.Runtime

	envPrefix string
}

// NewFlagSet returns the flag set of the daemon name. It prints nothing
// itself: Parse returns its errors, and FlagsError reports them (and
// prints the help for -h and -help-all).
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	clidoc.Silence(fs)
	return fs
}

// ErrHelpAll is what Parse returns for -help-all: the caller prints every
// flag (FlagsError does).
var ErrHelpAll = errors.New("-help-all")

// AddFlags defines the server flags on fs with their defaults; envPrefix
// ("ODOH_TARGET") names their environment variables in Parse, and
// adminAddr is the daemon's default -admin (admin.TargetAddr, …).
func (f *ServerFlags) AddFlags(fs *flag.FlagSet, envPrefix, adminAddr string) {
	f.envPrefix = envPrefix
	fs.StringVar(&f.Listen, "listen", ":443", "serve HTTPS (TCP) and HTTP/3 (UDP) on `ADDR`")
	fs.StringVar(&f.CertFile, "cert", "", "TLS certificate chain `FILE` (PEM; required)")
	fs.StringVar(&f.KeyFile, "key", "", "TLS private key `FILE` (PEM; required)")
	fs.StringVar(&f.AdminAddr, "admin", adminAddr, "serve /healthz, /readyz and /metrics on `ADDR` (plain HTTP; \"off\" disables)")
	fs.IntVar(&f.MaxHeaderBytes, "max-header-bytes", httpserve.DefaultMaxHeaderBytes, "largest request header block in `BYTES`")
	fs.IntVar(&f.MaxStreams, "max-streams", httpserve.DefaultMaxConcurrentStreams, "concurrent requests per HTTP/2 or HTTP/3 connection")
	fs.DurationVar(&f.ReadHeaderTimeout, "read-header-timeout", httpserve.DefaultReadHeaderTimeout, "bound the TLS or QUIC handshake and reading request headers")
	fs.DurationVar(&f.ReadTimeout, "read-timeout", httpserve.DefaultReadTimeout, "bound reading a request, body included (a late body closes its HTTP/1.1 or HTTP/2 connection)")
	fs.DurationVar(&f.WriteTimeout, "write-timeout", httpserve.DefaultWriteTimeout, "bound writing a response")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", httpserve.DefaultIdleTimeout, "close connections idle this long")
	fs.IntVar(&f.MaxConns, "max-conns", httpserve.DefaultMaxConns, "connections held at once, TCP and QUIC together (more are refused before TLS; -1: no cap)")
	fs.IntVar(&f.MaxConnsPerClient, "max-conns-per-client", httpserve.DefaultMaxConnsPerClient, "connections one client IP (or IPv6 /64) may hold (more are refused before TLS; -1: no cap)")
	fs.IntVar(&f.MaxRequests, "max-requests", httpserve.DefaultMaxRequests, "requests handled at once over all connections (more: 503; -1: no cap)")
	fs.IntVar(&f.ResetBudget, "reset-budget", httpserve.DefaultResetBudget, "reset or refused streams a connection may have beyond its answered ones before it is closed (-1: no budget)")
	fs.Var(&f.ProxyProtocolFrom, "proxy-protocol-from", "trust PROXY protocol v1/v2 headers on TCP from these load balancer `CIDRs` (comma-separated or repeated; off by default: a PROXY header is refused)")
	fs.BoolVar(&f.NoHTTP3, "no-http3", false, "serve TCP only (no HTTP/3, no Alt-Svc)")
	fs.DurationVar(&f.DrainTimeout, "drain-timeout", cli.DefaultDrainTimeout, "on SIGTERM, let in-flight requests finish this long")
	fs.DurationVar(&f.Lameduck, "lameduck", 0, "on SIGTERM, fail /readyz this long before draining")
	fs.BoolVar(&f.ShowVersion, "version", false, "print the version and exit")
	fs.BoolVar(&f.HelpAll, "help-all", false, "print every flag, with its default and environment variable, and exit")
	fs.BoolVar(&f.Healthcheck, "healthcheck", false, "ask the running daemon's -admin listener for /readyz, exit 0 if ready and 1 if not (a container HEALTHCHECK without shell or curl)")
	f.Runtime.AddFlags(fs, envPrefix)
	f.Log.AddFlags(fs)
	// A daemon's logs go to collectors: JSON by default.
	f.Log.Format = "json"
	fs.Lookup("log-format").DefValue = "json"
}

// Parse parses args with fs, refuses positional arguments, fills what the
// command line left unset from the environment (see cli.ApplyEnv) and
// then, unless -version or -healthcheck was given, checks the flags with
// Validate(own). It returns flag.ErrHelp for -h and ErrHelpAll for
// -help-all.
func (f *ServerFlags) Parse(fs *flag.FlagSet, args []string, own func() error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.HelpAll {
		return ErrHelpAll
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the daemon takes flags only", fs.Args())
	}
	if err := cli.ApplyEnv(fs, f.envPrefix); err != nil {
		return err
	}
	if f.ShowVersion || f.Healthcheck {
		return nil
	}
	return f.Validate(own)
}

// Validate checks the server flags and, between the required files and
// the limits, the daemon's own flags with own (if not nil): with several
// bad flags, the daemons have always named them in this order.
func (f *ServerFlags) Validate(own func() error) error {
	if f.CertFile == "" || f.KeyFile == "" {
		return errors.New("-cert FILE and -key FILE are required: the TLS certificate chain and its private key, in PEM")
	}
	if own != nil {
		if err := own(); err != nil {
			return err
		}
	}
	if f.MaxStreams <= 0 || f.MaxHeaderBytes <= 0 {
		return errors.New("-max-streams and -max-header-bytes must be positive")
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"-max-conns", f.MaxConns}, {"-max-conns-per-client", f.MaxConnsPerClient},
		{"-max-requests", f.MaxRequests}, {"-reset-budget", f.ResetBudget}} {
		if v.n < -1 {
			return fmt.Errorf("%s must be positive, or -1 for none", v.name)
		}
	}
	f.proxyFrom = f.proxyFrom[:0]
	for _, s := range f.ProxyProtocolFrom {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("-proxy-protocol-from: %w", err)
		}
		f.proxyFrom = append(f.proxyFrom, p)
	}
	return nil
}

// parsePrefix parses a CIDR prefix or a single address (its /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: want CIDR such as 10.0.0.0/8 or an address", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad address %q: want CIDR such as 10.0.0.0/8 or an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// adminOn reports whether the admin listener is wanted.
func (f *ServerFlags) adminOn() bool {
	return f.AdminAddr != AdminOff && f.AdminAddr != ""
}

// FlagsError reports an error of Parse for the daemon doc.Name and returns
// its exit code. For -h it prints doc's short help to stdout, for
// -help-all every flag, and returns 0; any other error is one line on
// stderr with the hint to -h, and 2.
func FlagsError(stdout, stderr io.Writer, doc *clidoc.Command, err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		clidoc.Help(stdout, doc)
		return 0
	case errors.Is(err, ErrHelpAll):
		full := *doc
		full.Brief, full.Examples, full.More = nil, nil, ""
		clidoc.Help(stdout, &full)
		fmt.Fprintln(stdout, "\nFlags:")
		clidoc.Flags(stdout, doc)
		return 0
	}
	clidoc.FlagError(stderr, doc.Name, doc.Flags, err, doc.Name+" -h")
	return 2
}

// Run runs the daemon name with parsed flags and returns its exit code: with
// -version it prints the version to stdout; with -healthcheck it asks the
// admin listener (see admin.Check), prints "ready" to stdout and exits 0, or
// prints why not to stderr and exits 1; otherwise it sets up the logger
// (on stderr) and the Go runtime, and calls serve, logging its error as
// "<name> stopped". Bad logging flags exit 2, a failing runtime set-up or
// serve exits 1.
func (f *ServerFlags) Run(name, version string, stdout, stderr io.Writer, serve func(logger *slog.Logger) error) int {
	if f.ShowVersion {
		fmt.Fprintln(stdout, buildinfo.Read(version).String(name))
		return 0
	}
	if f.Healthcheck {
		return healthcheck(name, f.AdminAddr, stdout, stderr)
	}
	logger, err := f.Log.Logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	stop, err := f.Runtime.Apply()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer stop()
	if err := serve(logger); err != nil {
		logger.Error(name+" stopped", "err", err)
		return 1
	}
	return 0
}

// healthcheck is Run's -healthcheck mode.
func healthcheck(name, addr string, stdout, stderr io.Writer) int {
	if err := admin.Check(context.Background(), addr); err != nil {
		fmt.Fprintf(stderr, "%s: not ready: %v\n", name, err)
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	return 0
}

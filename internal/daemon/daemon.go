package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/certs"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/metrics"
)

// Daemon is a server daemon being started: New has loaded its certificate
// and handles its signals; the command builds its handler (with Registry)
// and calls Serve.
type Daemon struct {
	// Certs serves the certificate of -cert and -key; Serve reloads it on
	// SIGHUP.
	Certs *certs.Reloader
	// Registry is the daemon's own Prometheus registry, served on the
	// admin listener's /metrics: register the handler's metrics in it.
	Registry *prometheus.Registry

	flags       *ServerFlags
	logger      *slog.Logger
	signals     <-chan os.Signal
	stopSignals func()
	draining    atomic.Bool
}

// Config configures New.
type Config struct {
	// Flags are the daemon's validated server flags. Required.
	Flags *ServerFlags
	// Logger receives the daemon's events; nil means slog.Default().
	Logger *slog.Logger
	// Signals, if not nil, is read instead of the process's SIGINT,
	// SIGTERM and SIGHUP (a test's channel).
	Signals <-chan os.Signal
}

// New starts a daemon: it handles SIGINT, SIGTERM and SIGHUP from now on
// (or reads c.Signals) and loads the certificate. Call Close when done.
func New(c Config) (*Daemon, error) {
	flags, logger, signals := c.Flags, c.Logger, c.Signals
	if flags == nil {
		return nil, errors.New("daemon: no flags")
	}
	if logger == nil {
		logger = slog.Default()
	}
	d := &Daemon{flags: flags, logger: logger, signals: signals, stopSignals: func() {}}
	if signals == nil {
		// Handle signals before "serving" is logged: an orchestrator may
		// stop the daemon as soon as it reads that line.
		d.signals, d.stopSignals = cli.NotifySignals()
	}
	var err error
	if d.Certs, err = certs.NewReloader(flags.CertFile, flags.KeyFile); err != nil {
		_ = d.Close()
		return nil, err // it names the files
	}
	d.Registry = prometheus.NewRegistry()
	return d, nil
}

// Close stops the signal handling that New started.
func (d *Daemon) Close() error {
	d.stopSignals()
	return nil
}

// Service is what a daemon serves and what is its own in its life.
type Service struct {
	// Name is the program's name: the daemon logs "<Name> serving".
	Name string
	// Version is the release version (main.version), for /metrics and
	// the "serving" line.
	Version string
	// Handler serves the queries.
	Handler http.Handler
	// Ready, if set, is the daemon's own readiness check, asked while it
	// is not draining.
	Ready func() error
	// Reload, if set, reloads the daemon's own state on SIGHUP, after the
	// certificate; its error is joined to the certificate's. Return a
	// *cli.ReloadError for each part that fails (errors.Join them), so
	// that the log names it.
	Reload func() error
	// LogAttrs are the daemon's own attributes of the "serving" line,
	// logged after listen, admin and http3 and before version.
	LogAttrs []any
	// OnServing, if set, gets the query server and the admin address once
	// both listen: tests use it to break the server from under the daemon.
	OnServing func(srv *httpserve.Server, adminAddr string)
	// Cache, if set, is flushed by the admin listener's POST /cache/flush.
	Cache admin.Flusher
}

// Serve listens on -listen (and -admin), logs "<Name> serving" with the
// bound "listen" and "admin" addresses, and runs the daemon with cli.Run
// until it is stopped: /readyz fails while it drains, SIGHUP reloads the
// certificate and calls s.Reload. If the query server or the admin server
// stops serving on its own, the other stops too and Serve returns an
// error, rather than answering /readyz with nothing serving queries.
func (d *Daemon) Serve(ctx context.Context, s Service) error {
	f := d.flags
	srv := &httpserve.Server{
		Addr:      f.Listen,
		Handler:   s.Handler,
		TLSConfig: d.Certs.TLSConfig(),
		// httpserve keeps quic-go's per-request debug lines (a relay's
		// URIs name targets) and client addresses out of this logger.
		Logger:               d.logger,
		DisableHTTP3:         f.NoHTTP3,
		ReadHeaderTimeout:    f.ReadHeaderTimeout,
		ReadTimeout:          f.ReadTimeout,
		WriteTimeout:         f.WriteTimeout,
		IdleTimeout:          f.IdleTimeout,
		DrainTimeout:         f.DrainTimeout,
		MaxHeaderBytes:       f.MaxHeaderBytes,
		MaxConcurrentStreams: uint32(f.MaxStreams),
		MaxConns:             f.MaxConns,
		MaxConnsPerClient:    f.MaxConnsPerClient,
		MaxRequests:          f.MaxRequests,
		ResetBudget:          f.ResetBudget,
		ProxyProtocolFrom:    f.proxyFrom,
	}
	// <name>_connections_…: the caps' refusals, the rules' closes.
	conns, err := metrics.NewConns(d.Registry, strings.ReplaceAll(s.Name, "-", "_"),
		func() float64 { return float64(srv.ConnStats().Open) })
	if err != nil {
		return err
	}
	srv.Metrics = conns
	if err := srv.Listen(); err != nil {
		return cli.ListenError(err, f.Listen, "-listen")
	}
	build := buildinfo.Read(s.Version)
	var adm *admin.Server
	if f.adminOn() {
		var err error
		adm, err = admin.New(admin.Options{Addr: f.AdminAddr, Namespace: "odoh", Registry: d.Registry,
			Build: build, Ready: func() error { return d.ready(s.Ready) }, Logger: d.logger, Cache: s.Cache})
		if err == nil {
			err = adm.Listen()
		}
		if err != nil {
			srv.Close()
			return cli.ListenError(err, f.AdminAddr, "-admin")
		}
	}
	attrs := []any{"listen", srv.BoundAddr(), "admin", adminAddr(adm), "http3", !f.NoHTTP3}
	if len(f.proxyFrom) > 0 {
		attrs = append(attrs, "proxy_protocol_from", f.ProxyProtocolFrom.String())
	}
	attrs = append(attrs, s.LogAttrs...)
	attrs = append(attrs, "version", build.Version)
	d.logger.Info(s.Name+" serving", attrs...)

	// The admin server shuts down last: /metrics stays up while queries
	// drain.
	servers := cli.NewGroup(srv)
	if adm != nil {
		servers = cli.NewGroup(srv, adm)
	}
	if s.OnServing != nil {
		s.OnServing(srv, adminAddr(adm))
	}
	return cli.Run(ctx, d.logger, cli.Hooks{
		Start:        servers.Serve,
		Stopping:     func() { d.draining.Store(true) },
		Lameduck:     f.Lameduck,
		DrainTimeout: f.DrainTimeout,
		Drain:        servers.Shutdown,
		Reload:       func() error { return d.reload(s.Reload) },
		Signals:      d.signals,
	})
}

func adminAddr(a *admin.Server) string {
	if a == nil {
		return AdminOff
	}
	return a.BoundAddr()
}

// ready is the readiness check of /readyz.
func (d *Daemon) ready(own func() error) error {
	if d.draining.Load() {
		return errors.New("draining")
	}
	if own != nil {
		return own()
	}
	return nil
}

// reload re-reads the certificate, then the daemon's own state. Each that
// fails keeps its old state; the errors are returned together.
func (d *Daemon) reload(own func() error) error {
	var errs []error
	if err := d.Certs.Reload(); err != nil {
		errs = append(errs, &cli.ReloadError{Part: "certificate", Err: err})
	} else {
		d.logger.Info("certificate reloaded", "not_after", d.Certs.Certificate().Leaf.NotAfter)
	}
	if own != nil {
		if err := own(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

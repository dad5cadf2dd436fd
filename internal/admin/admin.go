// Package admin serves a daemon's operational endpoints on a separate,
// plain-HTTP listener (loopback by default):
//
//   - /healthz answers 200 "ok" while the process runs (liveness);
//   - /readyz answers 200 "ready" when Options.Ready returns nil and 503
//     with the reason otherwise: while starting, draining, or without keys
//     (readiness, so a load balancer stops sending before shutdown);
//   - /metrics serves Prometheus metrics from Options.Registry, never the
//     global default registry, with the Go runtime and process collectors
//     and a constant <namespace>_build_info{version,revision,goversion} 1;
//   - POST /cache/flush, when Options.Cache is set, removes cached answers
//     (see [Server.Handler] for its parameters).
//
// The lifecycle mirrors internal/httpserve: [New], [Server.Listen],
// [Server.Serve], [Server.Shutdown].
//
//	reg := prometheus.NewRegistry()
//	adm, err := admin.New(admin.Options{Addr: *adminAddr, Namespace: "odoh",
//		Registry: reg, Build: buildinfo.Read(version), Ready: ready, Logger: log})
//	if err := adm.Listen(); err != nil { ... }
//	go adm.Serve(ctx)
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/odohd/odoh/internal/buildinfo"
)

// The default admin addresses, one per program so that a target, a proxy
// and a stub run side by side on one host, on loopback (the endpoints are
// plain HTTP and unauthenticated), and on none of the ports that Prometheus
// and its exporters register for themselves (9090, 9100, …).
const (
	TargetAddr = "127.0.0.1:9551" // odoh-target
	ProxyAddr  = "127.0.0.1:9552" // odoh-proxy
	StubAddr   = "127.0.0.1:9553" // odoh stub
)

// Timeouts of the admin listener; its requests are small and local.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
)

// Options configures a Server.
type Options struct {
	// Addr is the "host:port" to listen on (required; see TargetAddr,
	// ProxyAddr and StubAddr for the programs' defaults).
	Addr string
	// Namespace prefixes the build_info metric, e.g. "odoh".
	Namespace string
	// Registry receives the Go, process and build_info collectors and is
	// what /metrics serves. Nil means a new registry, see Server.Registry.
	Registry *prometheus.Registry
	// Build labels the build_info metric.
	Build buildinfo.Info
	// Ready reports readiness: nil means ready. Nil Ready is always ready.
	Ready func() error
	// Logger receives serving errors; nil means slog.Default().
	Logger *slog.Logger
	// Cache, if not nil, is what POST /cache/flush flushes.
	Cache Flusher
}

// Flusher is an answer cache the admin listener can flush: Flush removes
// the entries of name (every type) and, with subtree, of every name below
// it, and returns how many it removed; Flush(".", true) empties it.
type Flusher interface {
	Flush(name string, subtree bool) int
}

// Server is the admin listener.
type Server struct {
	addr     string
	registry *prometheus.Registry
	ready    func() error
	logger   *slog.Logger
	cache    Flusher
	srv      *http.Server

	mu sync.Mutex
	ln net.Listener
}

// New builds a Server and registers its collectors in the registry. It
// fails if the registry already holds them.
func New(opts Options) (*Server, error) {
	s := &Server{
		addr:     opts.Addr,
		registry: opts.Registry,
		ready:    opts.Ready,
		logger:   opts.Logger,
		cache:    opts.Cache,
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: opts.Namespace,
		Name:      "build_info",
		Help:      "Always 1; labelled with the version, VCS revision and Go version of the running binary.",
	}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(opts.Build.Version, opts.Build.Revision, opts.Build.GoVersion).Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
	} {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("admin: registering collector: %w", err)
		}
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Registry returns the registry /metrics serves; callers register their
// own metrics there.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handler returns the admin endpoints as an http.Handler.
//
// POST /cache/flush flushes the answer cache; its parameters come in the
// query string or an application/x-www-form-urlencoded body:
//
//	name=NAME               the entries of NAME, of every type
//	name=NAME&subtree=true  those of NAME and of every name below it
//	all=true                every entry
//
// It answers 200 "flushed N entries", 400 for missing, unknown or bad
// parameters, 405 for any other method, and 403 for requests a web browser
// sent (those with an Origin or Sec-Fetch-Site header), so that no web page
// can flush a cache on loopback behind its user's back.
//
//	curl -X POST 'http://127.0.0.1:9551/cache/flush?name=example.com&subtree=true'
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if s.ready != nil {
			if err := s.ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}))
	if s.cache != nil {
		mux.HandleFunc("POST /cache/flush", s.flush)
	}
	return mux
}

// maxFlushForm bounds the body of a flush request.
const maxFlushForm = 4096

func (s *Server) flush(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
		http.Error(w, "cache flush refuses requests from web browsers (Origin or Sec-Fetch-Site header): use curl or another HTTP client", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFlushForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "reading the parameters: "+err.Error(), http.StatusBadRequest)
		return
	}
	name, subtree, err := flushScope(r.Form)
	if err != nil {
		http.Error(w, err.Error()+"; want name=NAME, name=NAME&subtree=true, or all=true", http.StatusBadRequest)
		return
	}
	n := s.cache.Flush(name, subtree)
	s.logger.Info("cache flushed", "name", name, "subtree", subtree, "removed", n)
	fmt.Fprintf(w, "flushed %d entries\n", n)
}

// flushScope reads the parameters of a flush.
func flushScope(form url.Values) (name string, subtree bool, err error) {
	for k, v := range form {
		if k != "name" && k != "subtree" && k != "all" {
			return "", false, fmt.Errorf("unknown parameter %q", k)
		}
		if len(v) != 1 {
			return "", false, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	flag := func(k string) (bool, error) {
		v, ok := form[k]
		if !ok {
			return false, nil
		}
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return false, fmt.Errorf("%s=%q is not true or false", k, v[0])
		}
		return b, nil
	}
	all, err := flag("all")
	if err != nil {
		return "", false, err
	}
	if subtree, err = flag("subtree"); err != nil {
		return "", false, err
	}
	name = form.Get("name")
	switch {
	case all && (name != "" || subtree):
		return "", false, errors.New("all=true takes no other parameter")
	case all:
		return ".", true, nil
	case name == "":
		return "", false, errors.New("no name given")
	}
	if _, ok := dns.IsDomainName(name); !ok || len(dns.Fqdn(name)) > 255 {
		return "", false, fmt.Errorf("%q is not a domain name", name)
	}
	return dns.Fqdn(name), subtree, nil
}

// Listen binds the TCP listener.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin: already listening")
	}
	if s.addr == "" {
		return errors.New("admin: no listen address")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin: listening: %w", err)
	}
	s.ln = ln
	return nil
}

// BoundAddr returns the bound "host:port", or "" before Listen.
func (s *Server) BoundAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// drainTimeout bounds Serve's drain once its context is cancelled: admin
// requests (health, metrics, a cache flush) are short.
const drainTimeout = 5 * time.Second

// Serve serves the listener bound by Listen and blocks until Shutdown, a
// serving error, or the cancellation of ctx, after which it drains as
// Shutdown does (for at most 5 s) and returns nil. Requests see ctx's
// values but not its cancellation.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return errors.New("admin: Serve called before Listen")
	}
	base := context.WithoutCancel(ctx)
	s.srv.BaseContext = func(net.Listener) context.Context { return base }
	drained := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(drained)
		dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err := s.Shutdown(dctx); err != nil {
			_ = s.srv.Close()
		}
	})
	err := s.srv.Serve(ln)
	if !stop() {
		<-drained
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("admin: serving: %w", err)
}

// Shutdown stops the listener and waits for running requests until ctx
// is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	err := s.srv.Shutdown(ctx)
	if ln != nil {
		_ = ln.Close()
	}
	if err != nil {
		return fmt.Errorf("admin: shutting down: %w", err)
	}
	return nil
}

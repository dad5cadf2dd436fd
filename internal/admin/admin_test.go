package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/buildinfo"
	"github.com/odohd/odoh/internal/testnet"
)

func startAdmin(t *testing.T, opts Options) (*Server, string, chan error) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(t.Context()) }()
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return s, "http://" + s.BoundAddr(), served
}

func fetch(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	var state atomic.Pointer[error]
	starting := errors.New("starting")
	state.Store(&starting)
	reg := prometheus.NewRegistry()
	s, base, served := startAdmin(t, Options{
		Namespace: "odoh",
		Registry:  reg,
		Build:     buildinfo.Info{Version: "v0.1.0", Revision: "abcdef", GoVersion: "go1.26.8"},
		Ready:     func() error { return *state.Load() },
	})
	if s.Registry() != reg {
		t.Fatal("Registry() is not the given registry")
	}
	if !strings.HasPrefix(s.BoundAddr(), "127.0.0.1:") {
		t.Fatalf("BoundAddr = %q", s.BoundAddr())
	}

	if code, body := fetch(t, "GET", base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := fetch(t, "GET", base+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz while starting = %d %q", code, body)
	}
	var ready error
	state.Store(&ready)
	if code, _ := fetch(t, "GET", base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
	draining := errors.New("draining")
	state.Store(&draining)
	if code, body := fetch(t, "GET", base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining = %d %q", code, body)
	}
	// Liveness does not follow readiness.
	if code, _ := fetch(t, "GET", base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d", code)
	}

	code, body := fetch(t, "GET", base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`odoh_build_info{goversion="go1.26.8",revision="abcdef",version="v0.1.0"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if code, _ := fetch(t, "POST", base+"/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d", code)
	}
	if code, _ := fetch(t, "GET", base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d", code)
	}

	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v after Shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestOwnRegistry(t *testing.T) {
	// Nothing lands in the global default registry.
	_, base, _ := startAdmin(t, Options{Namespace: "odohtest"})
	_, body := fetch(t, "GET", base+"/metrics")
	if !strings.Contains(body, "odohtest_build_info") {
		t.Fatal("build_info missing from a default-constructed registry")
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "odohtest_") {
			t.Fatalf("%s registered in the default registry", mf.GetName())
		}
	}
	// Nil Ready means ready.
	if code, _ := fetch(t, "GET", base+"/readyz"); code != 200 {
		t.Errorf("/readyz with nil Ready = %d", code)
	}
}

func TestDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Registry: reg}); err == nil {
		t.Fatal("second New on the same registry succeeded")
	}
}

func TestListenWithoutAddr(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "no listen address") {
		t.Errorf("Listen without Addr: %v", err)
	}
}

func TestCheck(t *testing.T) {
	var ready atomic.Bool
	s, base, _ := startAdmin(t, Options{Ready: func() error {
		if !ready.Load() {
			return errors.New("no keys yet")
		}
		return nil
	}})
	_, port, err := net.SplitHostPort(s.BoundAddr())
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), s.BoundAddr()); err == nil || !strings.Contains(err.Error(), "503") ||
		!strings.Contains(err.Error(), "no keys yet") {
		t.Errorf("Check while not ready = %v, want the 503 and its reason", err)
	}
	ready.Store(true)
	// The admin listener's own address, and the forms of a listener bound
	// to every address, which Check asks on loopback.
	for _, addr := range []string{s.BoundAddr(), ":" + port, "0.0.0.0:" + port} {
		if err := Check(t.Context(), addr); err != nil {
			t.Errorf("Check(%q) = %v (server %s)", addr, err, base)
		}
	}
	closed := testnet.RefusingAddr(t)
	if err := Check(t.Context(), closed); err == nil || !strings.Contains(err.Error(), closed) {
		t.Errorf("Check of a closed port = %v", err)
	}
	if err := Check(t.Context(), "off"); err == nil {
		t.Error("Check(off) succeeded")
	}
}

// Cancelling Serve's context drains: a /readyz being answered finishes,
// new connections are refused meanwhile, and only then does Serve return
// nil.
func TestServeDrainsWhenContextCancelled(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: func() error {
		close(entered)
		<-release
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	status := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + s.BoundAddr() + "/readyz")
		if err != nil {
			status <- -1
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	<-entered
	cancel()
	for { // the drain has begun once the listener refuses
		c, err := net.DialTimeout("tcp", s.BoundAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}
	close(release)
	if got := <-status; got != http.StatusOK {
		t.Fatalf("the request in flight got %d, want 200", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

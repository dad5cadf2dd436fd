package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
)

// started is a daemon running in the background.
type started struct {
	srv     *httpserve.Server
	admin   string
	signals chan os.Signal
	done    chan error
	logs    *testlog.Buffer
}

// startDaemon runs a daemon on loopback with the given service; admin is
// the -admin value, args more flags.
func startDaemon(t *testing.T, ca *testca.CA, admin string, s Service, args ...string) *started {
	t.Helper()
	cert, key := ca.Issue(t)
	f, fs := newFlags(t, io.Discard)
	if err := f.Parse(fs, append([]string{"-listen", "127.0.0.1:0", "-admin", admin, "-cert", cert, "-key", key}, args...), nil); err != nil {
		t.Fatal(err)
	}
	st := &started{signals: make(chan os.Signal, 1), done: make(chan error, 1), logs: &testlog.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(st.logs, nil))
	d, err := New(Config{Flags: f, Logger: logger, Signals: st.signals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	type serving struct {
		srv   *httpserve.Server
		admin string
	}
	up := make(chan serving, 1)
	s.OnServing = func(srv *httpserve.Server, admin string) { up <- serving{srv, admin} }
	go func() { st.done <- d.Serve(context.Background(), s) }()
	select {
	case u := <-up:
		st.srv, st.admin = u.srv, u.admin
	case err := <-st.done:
		t.Fatalf("daemon stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	t.Cleanup(func() { _ = st.srv.Close() })
	return st
}

// readyz returns the admin listener's /readyz status and body. The timeout
// is a hang guard: an answer is expected at once, a stopped listener
// refuses at once.
func (st *started) readyz() (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + st.admin + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (st *started) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-st.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
		return nil
	}
}

// logLine returns the first JSON log line whose msg is msg.
func logLine(t *testing.T, logs string, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no %q line in logs:\n%s", msg, logs)
	return nil
}

// TestServeLifecycle: the daemon serves its handler over HTTPS, logs the
// "serving" line the harnesses parse, answers /readyz with its own check,
// reloads the certificate and its own state on SIGHUP and exits cleanly on
// SIGTERM.
func TestServeLifecycle(t *testing.T) {
	ca := testca.New(t)
	var notReady atomic.Bool
	var reloads atomic.Int32
	st := startDaemon(t, ca, "127.0.0.1:0", Service{
		Name:    "odoh-test",
		Version: "v1.2.3",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "answer") }),
		Ready: func() error {
			if notReady.Load() {
				return errors.New("no keys")
			}
			return nil
		},
		Reload: func() error {
			if reloads.Add(1) == 2 {
				return errors.New("zone kept: broken")
			}
			return nil
		},
		LogAttrs: []any{"doh", true},
	})

	line := logLine(t, st.logs.String(), "odoh-test serving")
	if line["listen"] != st.srv.BoundAddr() || line["admin"] != st.admin || line["http3"] != true ||
		line["doh"] != true || line["version"] != "v1.2.3" {
		t.Errorf("serving line: %v", line)
	}
	// The daemon's own attributes sit between http3 and version.
	raw := st.logs.String()
	if i, j, k := strings.Index(raw, `"http3"`), strings.Index(raw, `"doh"`), strings.Index(raw, `"version"`); !(i < j && j < k) {
		t.Errorf("attribute order: %s", raw)
	}

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + st.srv.BoundAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "answer" || resp.ProtoMajor != 2 {
		t.Errorf("query server: %s %q", resp.Proto, body)
	}

	if code, body, err := st.readyz(); err != nil || code != http.StatusOK {
		t.Errorf("/readyz: %d %q %v", code, body, err)
	}
	notReady.Store(true)
	if code, body, err := st.readyz(); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "no keys") {
		t.Errorf("/readyz, own check failing: %d %q %v", code, body, err)
	}
	notReady.Store(false)

	st.signals <- syscall.SIGHUP
	waitFor(t, func() bool { return strings.Contains(st.logs.String(), "certificate reloaded") && reloads.Load() == 1 })
	st.signals <- syscall.SIGHUP
	waitFor(t, func() bool { return strings.Contains(st.logs.String(), "zone kept: broken") })

	st.signals <- syscall.SIGTERM
	if err := st.wait(t); err != nil {
		t.Errorf("SIGTERM: serve returned %v", err)
	}
	if _, _, err := st.readyz(); err == nil {
		t.Error("admin server still answers after the stop")
	}
}

// TestDrainingFailsReadyz: during the lameduck wait /readyz fails with
// "draining" even when the daemon's own check passes.
func TestDrainingFailsReadyz(t *testing.T) {
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	f, fs := newFlags(t, io.Discard)
	if err := f.Parse(fs, []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-cert", cert, "-key", key, "-lameduck", "2s"}, nil); err != nil {
		t.Fatal(err)
	}
	signals := make(chan os.Signal, 1)
	d, err := New(Config{Flags: f, Logger: slog.New(slog.DiscardHandler), Signals: signals})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	up := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- d.Serve(context.Background(), Service{Name: "odoh-test", Handler: http.NotFoundHandler(),
			Ready: func() error { return nil }, OnServing: func(_ *httpserve.Server, a string) { up <- a }})
	}()
	st := &started{admin: <-up}
	signals <- syscall.SIGTERM
	waitFor(t, func() bool {
		code, body, err := st.readyz()
		return err == nil && code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stop after the lameduck")
	}
}

// TestQueryServerFailureStopsDaemon: when the HTTPS server stops serving
// on its own, the daemon must not linger with only its admin server up,
// answering /readyz 200: Serve returns an error and the admin server is
// gone.
func TestQueryServerFailureStopsDaemon(t *testing.T) {
	st := startDaemon(t, testca.New(t), "127.0.0.1:0", Service{Name: "odoh-test", Handler: http.NotFoundHandler()})
	waitFor(t, func() bool { code, _, _ := st.readyz(); return code == http.StatusOK })
	_ = st.srv.Close() // the query server stops, nobody asked it to
	if err := st.wait(t); err == nil {
		t.Error("serve returned nil: the daemon would exit 0")
	}
	if code, _, err := st.readyz(); err == nil {
		t.Errorf("/readyz answers %d with no query server, want no answer", code)
	}
}

func TestAdminOff(t *testing.T) {
	st := startDaemon(t, testca.New(t), "off", Service{Name: "odoh-test", Handler: http.NotFoundHandler()})
	if st.admin != "off" {
		t.Errorf("admin address %q, want off", st.admin)
	}
	if line := logLine(t, st.logs.String(), "odoh-test serving"); line["admin"] != "off" {
		t.Errorf("serving line: %v", line)
	}
	st.signals <- syscall.SIGINT
	if err := st.wait(t); err != nil {
		t.Errorf("SIGINT: %v", err)
	}
}

func TestNewBadCertificate(t *testing.T) {
	f := &ServerFlags{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"}
	// The reloader's error names the files once: no "loading certificate:
	// loading certificate …".
	if _, err := New(Config{Flags: f, Signals: make(chan os.Signal)}); err == nil || strings.Count(err.Error(), "loading certificate") != 1 ||
		!strings.Contains(err.Error(), "/nonexistent/cert.pem") {
		t.Errorf("got %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealthcheck: "-healthcheck" asks the running daemon's admin listener,
// found as the daemon finds it (here through the environment, as in a
// container), and exits 0 when ready, 1 when not ready or not running.
func TestHealthcheck(t *testing.T) {
	ca := testca.New(t)
	var notReady atomic.Bool
	st := startDaemon(t, ca, "127.0.0.1:0", Service{Name: "odoh-test", Handler: http.NotFoundHandler(),
		Ready: func() error {
			if notReady.Load() {
				return errors.New("no keys")
			}
			return nil
		}})
	check := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		f, fs := newFlags(t, &stderr)
		// No -cert or -key: a health check needs neither.
		if err := f.Parse(fs, append([]string{"-healthcheck"}, args...), nil); err != nil {
			t.Fatal(err)
		}
		code := f.Run("odoh-test", "v1", &stdout, &stderr, func(*slog.Logger) error {
			t.Error("-healthcheck started the daemon")
			return nil
		})
		return code, stdout.String(), stderr.String()
	}
	t.Setenv("ODOH_TEST_ADMIN", st.admin)
	if code, out, errOut := check(); code != 0 || out != "ready\n" {
		t.Errorf("ready daemon: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	notReady.Store(true)
	if code, _, errOut := check(); code != 1 || !strings.Contains(errOut, "not ready") || !strings.Contains(errOut, "no keys") {
		t.Errorf("unready daemon: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := check("-admin", "off"); code != 1 || !strings.Contains(errOut, "admin listener is off") {
		t.Errorf("-admin off: exit %d, stderr %q", code, errOut)
	}
	st.signals <- syscall.SIGTERM
	if err := st.wait(t); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := check(); code != 1 || !strings.Contains(errOut, st.admin) {
		t.Errorf("stopped daemon: exit %d, stderr %q", code, errOut)
	}
}

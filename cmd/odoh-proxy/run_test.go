package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/odoh"
)

func TestUsageAndVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errOut, nil); code != 0 {
		t.Errorf("-h exit %d", code)
	}
	for _, want := range []string{"Usage: odoh-proxy", "-allow-target", "-target-http3", "ODOH_PROXY_", "Examples:", "-help-all"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"-version"}, &out, &errOut, nil); code != 0 || !strings.HasPrefix(out.String(), "odoh-proxy ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("-version: exit %d, %q", code, out.String())
	}
}

func TestBadFlags(t *testing.T) {
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	for _, args := range [][]string{
		{"-allow-target", "t.example"},
		{"-cert", cert, "-key", key},
		{"-cert", cert, "-key", key, "-allow-target", "t.example", "-response-timeout", "0s"},
		{"-cert", cert, "-key", key, "-allow-target", "t.example", "extra"},
		{"-cert", cert, "-key", key, "-allow-target", "t.example", "-max-concurrent-per-client", "0"},
		{"-cert", cert, "-key", key, "-allow-target", "t.example", "-body-read-timeout", "0s"},
		{"-cert", cert, "-key", key, "-allow-target", "t.example", "-max-configs-fetches", "0"},
	} {
		var errOut bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &errOut, nil); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
	// A bad allowlist entry is refused with the flags, a bad allowlist
	// file at start.
	var errOut bytes.Buffer
	args := []string{"-cert", cert, "-key", key, "-allow-target", "a@b", "-listen", "127.0.0.1:0", "-admin", "off"}
	if code := run(context.Background(), args, io.Discard, &errOut, nil); code != 2 {
		t.Errorf("bad entry: exit %d (%s)", code, errOut.String())
	}
	allowFile := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allowFile, []byte("a@b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	args = []string{"-cert", cert, "-key", key, "-allow-file", allowFile, "-listen", "127.0.0.1:0", "-admin", "off"}
	if code := run(context.Background(), args, io.Discard, &errOut, nil); code != 1 || !strings.Contains(errOut.String(), `a@b`) {
		t.Errorf("bad entry in -allow-file: exit %d (%s)", code, errOut.String())
	}
}

// TestDaemon runs the daemon in process: it forwards over h2 and h3,
// takes settings from the environment, serves the admin endpoints, reloads
// the allowlist on SIGHUP and drains on SIGTERM.
func TestDaemon(t *testing.T) {
	ca := testca.New(t)
	var mu sync.Mutex
	var seen []http.Header
	slowArrived := make(chan struct{}, 1)
	tgt := &httpserve.Server{Addr: "127.0.0.1:0", TLSConfig: ca.ServerTLS(t), Logger: slog.New(slog.DiscardHandler),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if r.URL.Path == "/slow" {
				slowArrived <- struct{}{}
				time.Sleep(500 * time.Millisecond)
			}
			mu.Lock()
			seen = append(seen, r.Header.Clone())
			mu.Unlock()
			w.Header().Set("Content-Type", odoh.ContentType)
			_, _ = w.Write(body)
		})}
	if err := tgt.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = tgt.Serve(context.Background()) }()
	t.Cleanup(func() { _ = tgt.Close() })
	target := tgt.BoundAddr()

	dir := t.TempDir()
	allowFile := filepath.Join(dir, "targets")
	if err := os.WriteFile(allowFile, []byte("# test targets\n"+target+"  # the recording target\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := ca.Issue(t)
	t.Setenv("ODOH_PROXY_CLIENT_RATE", "0")
	t.Setenv("ODOH_PROXY_ALLOW_FILE", allowFile)
	stderr := &testlog.Buffer{}
	signals := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
			"-cert", cert, "-key", key, "-ca", ca.CAFile(t), "-log-level", "debug"}, io.Discard, stderr, signals)
	}()
	var listen, adminAddr string
	deadline := time.Now().Add(10 * time.Second)
	for listen == "" && time.Now().Before(deadline) {
		for line := range strings.SplitSeq(stderr.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "odoh-proxy serving" {
				listen, _ = rec["listen"].(string)
				adminAddr, _ = rec["admin"].(string)
			}
		}
		select {
		case code := <-done:
			t.Fatalf("daemon exited %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if listen == "" {
		t.Fatalf("daemon did not start: %s", stderr.String())
	}

	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	h3t := &http3.Transport{TLSClientConfig: ca.ClientTLS()}
	defer h3t.Close()
	h3 := &http.Client{Transport: h3t, Timeout: 5 * time.Second}
	query := func(c *http.Client) *http.Response { return queryPath(t, c, listen, target, "/dns-query") }
	// With the rate limit off (from the environment), a burst beyond the
	// default passes.
	for range 5 {
		if resp := query(h2); resp.StatusCode != 200 || resp.Header.Get("Alt-Svc") == "" {
			t.Fatalf("h2: %d, Alt-Svc %q", resp.StatusCode, resp.Header.Get("Alt-Svc"))
		}
	}
	if resp := query(h3); resp.StatusCode != 200 || resp.ProtoMajor != 3 {
		t.Fatalf("h3: %d %s", resp.StatusCode, resp.Proto)
	}
	mu.Lock()
	for _, h := range seen {
		if h.Get("Cookie") != "" {
			t.Error("cookie forwarded")
		}
	}
	mu.Unlock()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz %d", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`odoh_proxy_requests_total{result="forwarded"} 6`, "odoh_build_info", "odoh_proxy_upstream_duration_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, "127.0.0.1") {
		t.Error("/metrics carries an address")
	}

	// SIGHUP with a new allowlist drops the target.
	if err := os.WriteFile(allowFile, []byte("other.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signals <- syscall.SIGHUP
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "allowlist reloaded") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if resp := query(h2); resp.StatusCode != 403 {
		t.Errorf("after reload: %d, want 403", resp.StatusCode)
	}
	// A broken allowlist keeps the current one.
	if err := os.WriteFile(allowFile, []byte("bad@entry\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signals <- syscall.SIGHUP
	deadline = time.Now().Add(5 * time.Second)
	// The file and the line, and no package prefix.
	badReload := `"msg":"reload failed for the allowlist, which keeps its previous state; the rest was reloaded","err":"allowlist: -allow-file ` +
		allowFile + ` line 1: allowlist entry \"bad@entry\": `
	for !strings.Contains(stderr.String(), badReload) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), badReload) {
		t.Error("bad reload not reported")
	}

	// Drain: a request in flight when SIGTERM arrives still completes.
	if err := os.WriteFile(allowFile, []byte(target+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signals <- syscall.SIGHUP
	deadline = time.Now().Add(5 * time.Second)
	for strings.Count(stderr.String(), "allowlist reloaded") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	slow := make(chan int, 1)
	go func() {
		resp, err := h2.Do(slowRequest(listen, target))
		if err != nil {
			slow <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	select {
	case <-slowArrived:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request did not arrive")
	}
	signals <- syscall.SIGTERM
	if code := <-slow; code != 200 {
		t.Errorf("request in flight at SIGTERM: %d, want 200 (drained)", code)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	// No per-request logs, even at debug level: the refused target
	// appears in one refusal line (rate-limited), never per request.
	logs := stderr.String()
	for _, leak := range []string{"targethost", "/dns-query", "handling request"} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q:\n%s", leak, logs)
		}
	}
	var refusals int
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, target) {
			refusals++
			if !strings.Contains(line, `"msg":"refused a request","target":"`+target+`","status":403,"proxy_status":"http_request_denied","reason":"target not allowed"`) {
				t.Errorf("a log line names the target: %s", line)
			}
		}
	}
	if refusals != 1 {
		t.Errorf("the refused target is in %d log lines, want 1:\n%s", refusals, logs)
	}
}

func slowRequest(listen, target string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, "https://"+listen+"/dns-query?targethost="+target+"&targetpath=%2Fslow", strings.NewReader("q"))
	req.Header.Set("Content-Type", odoh.ContentType)
	return req
}

// queryPath POSTs a query for target's path through the proxy at listen,
// with a cookie that must not be forwarded.
func queryPath(t *testing.T, c *http.Client, listen, target, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://"+listen+"/proxy?targethost="+target+"&targetpath="+path, strings.NewReader("q"))
	req.Header.Set("Content-Type", odoh.ContentType)
	req.Header.Set("Cookie", "session=1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

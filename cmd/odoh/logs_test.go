package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/testlog"
)

// A one-shot command shows an error once: the client's warning of a
// failure that the command then reports is dropped; other warnings stay.
func TestDeferredLogger(t *testing.T) {
	var out testlog.Buffer
	d, err := newDeferredLogger(cli.LogConfig{Format: "text", Level: "info"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	d.logger.Warn("direct mode: the target sees your address")
	if !strings.Contains(out.String(), "direct mode") {
		t.Fatalf("a warning without an error waited: %q", out.String())
	}
	d.logger.With("target", "t").Warn("fetching configs failed", "err", "CONNECT t answered HTTP 403")
	d.logger.Warn("another target failed", "err", "connection refused")
	if strings.Contains(out.String(), "failed") {
		t.Fatalf("errors logged before the command's own: %q", out.String())
	}
	d.flush(errors.New("target configs unavailable: CONNECT t answered HTTP 403 (Proxy-Status: …)"))
	got := out.String()
	if strings.Contains(got, "fetching configs failed") || !strings.Contains(got, `msg="another target failed" err="connection refused"`) {
		t.Errorf("after flush: %q", got)
	}
	d.logger.Warn("fetch cancelled", "err", "context canceled")
	d.logger.Info("closing")
	if got := out.String(); strings.Contains(got, "cancelled") || !strings.Contains(got, "closing") {
		t.Errorf("after the outcome: %q", got)
	}
	// A configs fetch that the query's deadline cut fails in its own
	// words; the query reports the deadline for that target: one error.
	var out2 testlog.Buffer
	d, err = newDeferredLogger(cli.LogConfig{Format: "text", Level: "info"}, &out2)
	if err != nil {
		t.Fatal(err)
	}
	d.logger.Warn("fetching odoh configs failed", "target", "https://127.0.0.1:36711/dns-query",
		"err", "target configs unavailable: TLS with target 127.0.0.1:36711 through the tunnel of https://p: http2: response body closed")
	d.logger.Warn("fetching odoh configs failed", "target", "https://other.example/dns-query",
		"err", "target configs unavailable: TLS with target other.example:443: EOF")
	d.flush(errors.New("target configs unavailable: the query's deadline came while fetching the configs of target 127.0.0.1:36711 through the tunnel of https://p: context deadline exceeded"))
	if got := out2.String(); strings.Contains(got, "36711") || !strings.Contains(got, "other.example") {
		t.Errorf("a cut fetch and another target's: %q", got)
	}
}

// The stub logs a failure with the fix the query command would print.
func TestStubLogsTheFix(t *testing.T) {
	var b bytes.Buffer
	l := withHints(slog.New(slog.NewTextHandler(&b, nil))).With("target", "https://odoh.example/dns-query")
	denied := &client.HTTPError{URL: "CONNECT odoh.example:443", StatusCode: 403,
		ProxyStatus: `odoh-proxy; error=http_request_denied; details="target not allowed"`}
	l.Warn("fetching odoh configs failed", "err", fmt.Errorf("%w: %w", client.ErrConfig, denied))
	l.Warn("answering SERVFAIL", "reason", "configs 403")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 ||
		!strings.HasSuffix(lines[0], ` fix="the proxy does not forward to this target: use a proxy that allows it, or ask the proxy's operator to allow it (odoh-proxy -allow-target HOST[:PORT])"`) ||
		strings.Contains(lines[1], "fix=") {
		t.Errorf("logs:\n%s", b.String())
	}
}

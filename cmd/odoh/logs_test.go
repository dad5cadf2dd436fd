package main

import (
	"errors"
	"strings"
	"testing"

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
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/clidoc"
)

// -h fits a terminal and shows examples; -help-all lists every flag with
// its environment variable; a wrong flag is one line with the hint to -h.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr, nil); code != 0 || stderr.Len() != 0 {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr.String())
	}
	clidoc.CheckScreen(t, "odoh-proxy -h", stdout.String())
	if !strings.HasPrefix(stdout.String(), "Usage: odoh-proxy ") || !strings.Contains(stdout.String(), "\nExamples:\n") {
		t.Errorf("-h:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"-help-all"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("-help-all: exit %d", code)
	}
	clidoc.CheckWidth(t, "odoh-proxy -help-all", stdout.String())
	for _, fi := range clidoc.All(newFlagSet(&config{})) {
		if !strings.Contains(stdout.String(), "  -"+fi.Name+"\n") && !strings.Contains(stdout.String(), "  -"+fi.Name+" ") {
			t.Errorf("-help-all lacks -%s", fi.Name)
		}
	}
	if !strings.Contains(stdout.String(), "[$ODOH_PROXY_LISTEN]") {
		t.Error("-help-all names no environment variable")
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"-listne", ":443"}, &stdout, &stderr, nil); code != 2 || stdout.Len() != 0 ||
		stderr.String() != "odoh-proxy: unknown flag -listne (did you mean -listen?); run 'odoh-proxy -h' for usage\n" {
		t.Errorf("wrong flag: exit %d, stderr %q", code, stderr.String())
	}
}

// TestGeneratedManPage: docs/man/odoh-proxy.8 is what the flag definitions
// give (make docs rewrites it), and renders without a warning.
func TestGeneratedManPage(t *testing.T) {
	var man bytes.Buffer
	clidoc.Man(&man, clidoc.Page{Command: command(newFlagSet(&config{})), Section: 8,
		SeeAlso: []string{"odoh(1)", "(8)"}})
	clidoc.CheckFile(t, "../../docs/man/odoh-proxy.8", man.Bytes())
	clidoc.CheckManRenders(t, man.Bytes())
}

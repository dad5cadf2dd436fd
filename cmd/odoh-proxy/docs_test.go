package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/odohd/odoh/internal/clidoc"
)

// -h fits a terminal and shows examples; -help-all lists every flag with
// its environment variable; a wrong flag is one line with the hint to -h.
func TestHelp(t *testing.T) {
	clidoc.CheckDaemonHelp(t, "odoh-proxy", newFlagSet(&config{}), "ODOH_PROXY_LISTEN", func(args []string, stdout, stderr io.Writer) int {
		return run(context.Background(), args, stdout, stderr, nil)
	})
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

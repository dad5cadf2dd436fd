package daemon

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/cli"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/internal/httpserve"
)

func newFlags(t *testing.T, _ io.Writer) (*ServerFlags, *flag.FlagSet) {
	t.Helper()
	var f ServerFlags
	fs := NewFlagSet("odoh-test")
	f.AddFlags(fs, "ODOH_TEST", "127.0.0.1:9559")
	return &f, fs
}

// testDoc documents the test daemon's flags.
func testDoc(fs *flag.FlagSet) *clidoc.Command {
	return &clidoc.Command{Name: "odoh-test", Usage: []string{"odoh-test -cert FILE -key FILE"}, Flags: fs,
		EnvPrefix: "ODOH_TEST", Brief: []string{"listen", "cert"}, Examples: []clidoc.Example{{Command: "odoh-test -cert c -key k"}}}
}

func TestFlagsDefaults(t *testing.T) {
	f, fs := newFlags(t, io.Discard)
	if err := f.Parse(fs, []string{"-cert", "c", "-key", "k"}, nil); err != nil {
		t.Fatal(err)
	}
	if f.Listen != ":443" || f.AdminAddr != "127.0.0.1:9559" || f.CertFile != "c" || f.NoHTTP3 ||
		f.MaxStreams != httpserve.DefaultMaxConcurrentStreams || f.MaxHeaderBytes != httpserve.DefaultMaxHeaderBytes ||
		f.IdleTimeout != httpserve.DefaultIdleTimeout || f.Lameduck != 0 || f.Log.Format != "json" {
		t.Errorf("defaults: %+v", f)
	}
	if got := fs.Lookup("log-format").DefValue; got != "json" {
		t.Errorf("-log-format default shown as %q, want json", got)
	}
}

// TestFlagsEnv: the environment fills what the command line leaves unset,
// under the daemon's prefix, and the command line wins.
func TestFlagsEnv(t *testing.T) {
	t.Setenv("ODOH_TEST_LISTEN", "127.0.0.1:8443")
	t.Setenv("ODOH_TEST_DRAIN_TIMEOUT", "7s")
	t.Setenv("ODOH_TEST_ADMIN", "127.0.0.1:1")
	f, fs := newFlags(t, io.Discard)
	if err := f.Parse(fs, []string{"-admin", "off", "-no-http3", "-cert", "c", "-key", "k"}, nil); err != nil {
		t.Fatal(err)
	}
	if f.Listen != "127.0.0.1:8443" || f.DrainTimeout != 7*time.Second || f.AdminAddr != "off" || !f.NoHTTP3 {
		t.Errorf("got listen %q drain %v admin %q no-http3 %v", f.Listen, f.DrainTimeout, f.AdminAddr, f.NoHTTP3)
	}
	if f.adminOn() {
		t.Error("-admin off: admin still on")
	}
}

func TestParseRefuses(t *testing.T) {
	var stderr bytes.Buffer
	f, fs := newFlags(t, &stderr)
	if err := f.Parse(fs, []string{"-listen", ":1", "extra"}, nil); err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("positional argument: %v", err)
	}
	f, fs = newFlags(t, &stderr)
	own := errors.New("own flag bad")
	if err := f.Parse(fs, []string{"-cert", "c", "-key", "k"}, func() error { return own }); err != own {
		t.Errorf("own check: %v", err)
	}
	// -version needs neither a certificate nor valid flags.
	f, fs = newFlags(t, &stderr)
	if err := f.Parse(fs, []string{"-version", "-max-streams", "0"}, nil); err != nil || !f.ShowVersion {
		t.Errorf("-version: %v", err)
	}
	f, fs = newFlags(t, &stderr)
	if err := f.Parse(fs, []string{"-h"}, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	f, fs = newFlags(t, &stderr)
	if err := f.Parse(fs, []string{"-help-all"}, nil); !errors.Is(err, ErrHelpAll) {
		t.Errorf("-help-all: %v", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("Parse wrote %q", stderr.String())
	}
}

// TestValidateOrder: the required files are named first, then the
// daemon's own flags, then the limits.
func TestValidateOrder(t *testing.T) {
	own := errors.New("own flag bad")
	bad := func() error { return own }
	for _, tc := range []struct {
		name      string
		cert, key string
		streams   int
		own       func() error
		want      string
	}{
		{"no key", "c", "", 0, bad, "-cert FILE and -key FILE are required: the TLS certificate chain and its private key, in PEM"},
		{"own before limits", "c", "k", 0, bad, "own flag bad"},
		{"limits", "c", "k", 0, nil, "-max-streams and -max-header-bytes must be positive"},
		{"ok", "c", "k", 1, func() error { return nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &ServerFlags{CertFile: tc.cert, KeyFile: tc.key, MaxStreams: tc.streams, MaxHeaderBytes: 1}
			err := f.Validate(tc.own)
			if got := ""; err != nil {
				got = err.Error()
				if got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			} else if tc.want != "" {
				t.Errorf("got nil, want %q", tc.want)
			}
		})
	}
}

// TestFlagsError: -h prints the short help to stdout, -help-all every
// flag; a wrong flag is one line on stderr, with a suggestion and the hint
// to -h, never the usage.
func TestFlagsError(t *testing.T) {
	f, fs := newFlags(t, io.Discard)
	doc := testDoc(fs)
	var stdout, stderr bytes.Buffer
	if code := FlagsError(&stdout, &stderr, doc, f.Parse(fs, []string{"-h"}, nil)); code != 0 || stderr.Len() != 0 ||
		!strings.HasPrefix(stdout.String(), "Usage: odoh-test -cert FILE -key FILE\n") ||
		!strings.Contains(stdout.String(), "-listen ADDR") || strings.Contains(stdout.String(), "-drain-timeout") ||
		!strings.Contains(stdout.String(), "Examples:\n  odoh-test -cert c -key k\n") {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	f, fs = newFlags(t, io.Discard)
	if code := FlagsError(&stdout, &stderr, testDoc(fs), f.Parse(fs, []string{"-help-all"}, nil)); code != 0 ||
		!strings.Contains(stdout.String(), "  -drain-timeout D\n") || !strings.Contains(stdout.String(), "[$ODOH_TEST_DRAIN_TIMEOUT]") {
		t.Errorf("-help-all: exit %d, stdout %q", code, stdout.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-bogus"}, "odoh-test: unknown flag -bogus; run 'odoh-test -h' for usage\n"},
		{[]string{"-drain-timout", "1s"}, "odoh-test: unknown flag -drain-timout (did you mean -drain-timeout?); run 'odoh-test -h' for usage\n"},
		{[]string{"-cert", "c"}, "odoh-test: -cert FILE and -key FILE are required: the TLS certificate chain and its private key, in PEM; run 'odoh-test -h' for usage\n"},
	} {
		stdout.Reset()
		stderr.Reset()
		f, fs := newFlags(t, io.Discard)
		if code := FlagsError(&stdout, &stderr, testDoc(fs), f.Parse(fs, tc.args, nil)); code != 2 || stderr.String() != tc.want || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want %q", tc.args, code, stderr.String(), stdout.String(), tc.want)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	called := false
	serve := func(*slog.Logger) error { called = true; return nil }

	var stdout, stderr bytes.Buffer
	f := &ServerFlags{ShowVersion: true}
	if code := f.Run("odoh-test", "v9.9.9", &stdout, &stderr, serve); code != 0 || called ||
		!strings.HasPrefix(stdout.String(), "odoh-test v9.9.9") {
		t.Errorf("-version: exit %d, served %v, %q", code, called, stdout.String())
	}

	f = &ServerFlags{Log: cli.LogConfig{Level: "bogus"}}
	if code := f.Run("odoh-test", "", &stdout, &stderr, serve); code != 2 || called {
		t.Errorf("bad log level: exit %d, served %v", code, called)
	}

	f, fs := newFlags(t, io.Discard)
	if err := f.Parse(fs, []string{"-gc-percent", "100", "-cert", "c", "-key", "k"}, nil); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	failing := func(*slog.Logger) error { return errors.New("no socket") }
	if code := f.Run("odoh-test", "", &stdout, &stderr, failing); code != 1 ||
		!strings.Contains(stderr.String(), `"msg":"odoh-test stopped","err":"no socket"`) {
		t.Errorf("serve error: exit %d, %q", code, stderr.String())
	}
	if code := f.Run("odoh-test", "", &stdout, &stderr, serve); code != 0 || !called {
		t.Errorf("clean stop: exit %d, served %v", code, called)
	}
}

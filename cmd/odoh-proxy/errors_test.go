package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/testca"
)

// Mistakes an operator makes get an error that names the cause and the
// fix.
func TestFlagErrorTexts(t *testing.T) {
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	base := []string{"-cert", cert, "-key", key, "-listen", "127.0.0.1:0", "-admin", "off"}
	allowFile := filepath.Join(t.TempDir(), "targets")
	if err := os.WriteFile(allowFile, []byte("# targets\nodoh.example\nhttps://odoh.example/dns-query\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-allow-target", "https://odoh.example/dns-query"}, 2,
			`odoh-proxy: -allow-target: allowlist entry "https://odoh.example/dns-query" is a URL: give the target's HOST or HOST:PORT alone, such as odoh.example; run 'odoh-proxy -h' for usage`},
		{[]string{"-allow-target", "odoh.example:0x1bb"}, 2,
			`allowlist entry "odoh.example:0x1bb": bad port: want HOST or HOST:PORT, such as odoh.example or 192.0.2.1:8443`},
		{[]string{"-allow-target", "odoh.example", "-resolver", "dns.example"}, 2,
			`-resolver "dns.example": want the IP address of a DNS server, with an optional port (such as 127.0.0.1 or [::1]:5353)`},
		{[]string{"-allow-target", "odoh.example", "-resolver", "127.0.0.1:99999"}, 2, `-resolver "127.0.0.1:99999": bad port "99999"`},
		// An allowlist file's bad entry: the file, its line, the fix.
		{[]string{"-allow-file", allowFile}, 1,
			`-allow-file ` + allowFile + ` line 3: allowlist entry \"https://odoh.example/dns-query\" is a URL: give the target's HOST or HOST:PORT alone, such as odoh.example"`},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), append(base, tc.args...), io.Discard, &stderr, nil)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

// -resolver without a port means port 53, as for every DNS client.
func TestResolverAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":      "127.0.0.1:53",
		"127.0.0.1:5353": "127.0.0.1:5353",
		"::1":            "[::1]:53",
		"[::1]":          "[::1]:53",
		"[::1]:5353":     "[::1]:5353",
	} {
		if got, err := resolverAddr(in); err != nil || got != want {
			t.Errorf("resolverAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

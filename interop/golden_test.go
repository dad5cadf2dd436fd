package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/clidoc"
)

// goldenZone is the target's local zone for the golden outputs: fixed
// data, so that every answer (TTLs included) is the same in each run.
const goldenZone = `$ORIGIN golden.test.
$TTL 300
@             IN SOA   ns.golden.test. admin.golden.test. 1 3600 600 86400 60
@             IN NS    ns.golden.test.
@             IN MX    10 mail.golden.test.
@             IN TXT   "v=spf1 -all" "a second string"
www           IN A     192.0.2.80
www           IN AAAA  2001:db8::80
www           IN HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.80 ipv6hint=2001:db8::80
xn--bcher-kva IN A     192.0.2.81
_dns          IN SVCB  1 www.golden.test. alpn=h2 port=8443 dohpath=/dns-query{?dns}
$ORIGIN 2.0.192.in-addr.arpa.
@             IN SOA   ns.golden.test. admin.golden.test. 1 3600 600 86400 60
80            IN PTR   www.golden.test.
`

// TestCLIGolden runs the real odoh against the real proxy and target and
// compares its output, text and JSON, with testdata/golden (the parts
// that vary, such as times, IDs and ports, masked). ODOH_UPDATE_DOCS=1
// rewrites the files.
func TestCLIGolden(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "golden.zone")
	if err := os.WriteFile(zone, []byte(goldenZone), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, stackOptions{targetArgs: []string{"-local-zone", zone}})
	mask := masker(s)
	for _, tc := range []struct {
		name string
		args []string
		json bool
	}{
		{"a", []string{"www.golden.test"}, true},
		{"aaaa", []string{"www.golden.test", "AAAA"}, true},
		{"mx", []string{"golden.test", "MX"}, true},
		{"txt", []string{"golden.test", "TXT"}, true},
		{"https", []string{"www.golden.test", "HTTPS"}, true},
		{"svcb", []string{"_dns.golden.test", "SVCB"}, true},
		{"nxdomain", []string{"nope.golden.test"}, true},
		{"reverse", []string{"-x", "192.0.2.80"}, true},
		{"idn", []string{"bücher.golden.test"}, true},
		// The DO and CD bits reach the target inside the encrypted query:
		// its answer carries them back (flags: cd, EDNS flags: do).
		{"dnssec", []string{"www.golden.test", "+dnssec", "+cd"}, true},
		{"short", []string{"www.golden.test", "A", "AAAA", "HTTPS", "golden.test", "MX", "+short"}, false},
		{"noall-answer", []string{"golden.test", "TXT", "MX", "+noall", "+answer"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, s.clientArgs(tc.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			clidoc.CheckFile(t, filepath.Join("testdata", "golden", tc.name+".txt"), []byte(mask(out)))
			if !tc.json {
				return
			}
			out, errOut, code = runCLI(t, s.clientArgs(append(tc.args, "-json")...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("-json: exit %d, stderr %q", code, errOut)
			}
			clidoc.CheckFile(t, filepath.Join("testdata", "golden", tc.name+".json"), []byte(mask(out)))
		})
	}
}

// masker replaces what changes from run to run: the message ID, times,
// dates and the daemons' ports.
func masker(s *stack) func(string) string {
	r := strings.NewReplacer(s.Proxy.Listen, "127.0.0.1:PROXY", s.Target.Listen, "127.0.0.1:TARGET")
	res := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`id: \d+`), "id: ID"},
		{regexp.MustCompile(`Query time: \d+ msec`), "Query time: T msec"},
		{regexp.MustCompile(`;; WHEN: .*`), ";; WHEN: DATE"},
		{regexp.MustCompile(`"id":\d+`), `"id":0`},
		{regexp.MustCompile(`"time_ms":[0-9.]+`), `"time_ms":0`},
		{regexp.MustCompile(`"when":"[^"]*"`), `"when":"DATE"`},
	}
	return func(out string) string {
		out = r.Replace(out)
		for _, m := range res {
			out = m.re.ReplaceAllString(out, m.with)
		}
		return out
	}
}

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/clidoc"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/proxy"
	"github.com/odohd/odoh/target"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "odoh-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "odoh")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runBin(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// Every -h fits a terminal, goes to stdout with exit 0, and shows
// examples; odoh alone prints the same help as a usage error.
func TestHelpFitsAScreen(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"query", "-h"}, {"-h", "example.com"}, {"stub", "-h"},
		{"configs", "-h"}, {"stamp", "-h"}, {"keygen", "-h"}, {"completion", "-h"}} {
		out, errOut, code := runBin(t, nil, args...)
		if code != 0 || errOut != "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
		clidoc.CheckScreen(t, strings.Join(args, " "), out)
		if !strings.HasPrefix(out, "Usage: odoh") || !strings.Contains(out, "\nExamples:\n") {
			t.Errorf("%q: no usage or examples:\n%s", args, out)
		}
	}
	out, _, _ := runBin(t, nil, "query", "-h")
	for _, want := range []string{"-proxy URL", "-target URL", "+short", "-x ADDR", "odoh help query"} {
		if !strings.Contains(out, want) {
			t.Errorf("odoh query -h lacks %q", want)
		}
	}
	_, errOut, code := runBin(t, nil)
	if code != 2 || !strings.HasPrefix(errOut, "Usage: odoh") {
		t.Errorf("no arguments: exit %d, stderr %q", code, errOut)
	}
}

// "odoh help COMMAND" lists every flag of the command, with its
// environment variable, and nothing of the others.
func TestHelpCommandListsEveryFlag(t *testing.T) {
	cmds := commands()
	for _, name := range []string{"query", "stub", "configs", "stamp", "keygen"} {
		out, _, code := runBin(t, nil, "help", name)
		if code != 0 {
			t.Fatalf("help %s: exit %d", name, code)
		}
		for _, fi := range clidoc.All(cmds[name].doc.Flags) {
			if !strings.Contains(out, "  -"+fi.Name+"\n") && !strings.Contains(out, "  -"+fi.Name+" ") {
				t.Errorf("help %s lacks -%s", name, fi.Name)
			}
		}
		clidoc.CheckWidth(t, "help "+name, out)
	}
	out, _, _ := runBin(t, nil, "help", "stub")
	if !strings.Contains(out, "[$ODOH_LISTEN]") || strings.Contains(out, "-nolog") || strings.Contains(out, "+short") {
		t.Errorf("help stub: %s", out)
	}
	_, errOut, code := runBin(t, nil, "help", "nope")
	if code != 2 || !strings.Contains(errOut, `no command "nope": the commands are query, configs`) {
		t.Errorf("help nope: exit %d, %q", code, errOut)
	}
}

// Flags belong to their subcommand: a flag of another one is refused in
// one line that says what to do, never with the whole usage.
func TestFlagsBelongToTheirSubcommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-bogus", "example.com"}, "odoh: unknown flag -bogus; run 'odoh -h' for usage\n"},
		{[]string{"-proxi", "p", "example.com"}, "odoh: unknown flag -proxi (did you mean -proxy?); run 'odoh -h' for usage\n"},
		{[]string{"-dnssec", "example.com"}, "odoh: unknown flag -dnssec: the DNS options are dig's, written +dnssec; run 'odoh -h' for usage\n"},
		{[]string{"-listen", "127.0.0.1:53", "example.com"}, "odoh: unknown flag -listen; run 'odoh -h' for usage\n"},
		{[]string{"-out", "seed", "example.com"}, "odoh: unknown flag -out; run 'odoh -h' for usage\n"},
		{[]string{"-force", "example.com"}, "odoh: unknown flag -force; run 'odoh -h' for usage\n"},
		{[]string{"stamp", "-direct"}, "odoh: unknown flag -direct; run 'odoh stamp -h' for usage\n"},
		{[]string{"keygen", "-listen", "x"}, "odoh: unknown flag -listen; run 'odoh keygen -h' for usage\n"},
		{[]string{"stub", "-lisen", ":53"}, "odoh: unknown flag -lisen (did you mean -listen?); run 'odoh stub -h' for usage\n"},
		{[]string{"example.com", "+bogus"}, "odoh: unknown option +bogus: the +options are +short +json"},
		{[]string{"example.com", "AXFR"}, "odoh: AXFR: zone transfers do not run over ODoH"},
		{[]string{"-x", "example.com"}, `odoh: -x "example.com": not an IP address; give an IPv4 or IPv6 address`},
		{[]string{"MX"}, "odoh: no name to look up: give NAME with the type, such as odoh example.com MX"},
		{[]string{"a..b"}, `odoh: "a..b" is not a domain name`},
		{[]string{"example.com", "+short", "-json"}, "odoh: +short and -json exclude each other: give one"},
	} {
		out, errOut, code := runBin(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") > 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// One spelling of the build for every binary (odoh-target and odoh-proxy
// print theirs with buildinfo.Info.String too).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}} {
		out, _, code := runBin(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "odoh devel (revision ") || !strings.Contains(out, ", go1.") {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
}

func TestNoProxyRefused(t *testing.T) {
	_, errOut, code := runBin(t, nil, "-target", "https://127.0.0.1:1/dns-query", "example.com")
	if code != 2 || !strings.Contains(errOut, "no proxy: give -proxy URL (or @URL, or set ODOH_PROXY), or -direct") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// Same through the environment.
	_, errOut, code = runBin(t, []string{"ODOH_TARGET=https://127.0.0.1:1/dns-query"}, "example.com")
	if code != 2 || !strings.Contains(errOut, "no proxy") {
		t.Fatalf("env: exit %d, stderr %q", code, errOut)
	}
}

// Same operator: the error names what the two share and the flag that
// allows it, for names and for IP addresses.
func TestSameOperatorRefused(t *testing.T) {
	for _, tc := range []struct{ proxy, target, want string }{
		{"https://a.example.com/p{?targethost,targetpath}", "https://b.example.com/dns-query",
			"proxy a.example.com and target b.example.com are both under the registrable domain example.com"},
		{"127.0.0.1:8444", "127.0.0.1:8443",
			"proxy 127.0.0.1:8444 and target 127.0.0.1:8443 are both at the IP address 127.0.0.1"},
	} {
		_, errOut, code := runBin(t, nil, "-proxy", tc.proxy, "-target", tc.target, "example.com")
		if code != 2 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "-allow-same-operator to test on one host") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	}
}

func TestTransportErrorExit1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	k, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := odoh.MarshalConfigs(k.Config())
	if err != nil {
		t.Fatal(err)
	}
	// Static configs and IP literals: nothing is looked up in DNS.
	_, errOut, code := runBin(t, []string{"ODOH_PROXY=https://" + addr + "/dns-query{?targethost,targetpath}"},
		"-target", "https://192.0.2.1/dns-query", "-config", hex.EncodeToString(cfgs),
		"-timeout", "3s", "example.com", "AAAA", "-json")
	if code != 1 || !strings.HasPrefix(errOut, "odoh: ") ||
		!strings.Contains(errOut, "\nodoh: nothing accepts connections at "+addr+": check the host and port in -proxy or -target") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// Configs from the target, which refuses: the hint names the
	// target's address, not the proxy.
	_, errOut, code = runBin(t, []string{"ODOH_PROXY=https://192.0.2.1/dns-query{?targethost,targetpath}"},
		"-target", "https://"+addr+"/dns-query", "-configs-from-target", "-timeout", "3s", "example.com")
	if code != 1 || !strings.Contains(errOut, "fetching https://"+addr+"/.well-known/odohconfigs") ||
		!strings.Contains(errOut, "\nodoh: nothing accepts connections at "+addr+": ") {
		t.Fatalf("-configs-from-target: exit %d, stderr %q", code, errOut)
	}
}

// A target or proxy given wrong says what was wanted, with an example.
func TestEndpointErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-proxy", "http://p.example/q{?targethost,targetpath}", "-target", "https://odoh.example.net/dns-query"}, "not an https template"},
		{[]string{"-proxy", "p.example", "-target", "ftp://127.0.0.1:31443/x"},
			`target "ftp://127.0.0.1:31443/x" is not an https URL with a host and no query: want https://HOST[:PORT]/PATH, such as https://127.0.0.1:31443/dns-query`},
		{[]string{"-proxy", "p.example", "-target", "sdns://garbage"},
			`stamp "sdns://garbage": a DNSCrypt relay stamp with a bad address (is it cut short? copy the whole stamp)`},
		{[]string{"-proxy", "p.example", "-target", "sdns://AgcAAAAAAAAAAAAPZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk"},
			"is a DoH stamp, not an ODoH one: ODoH needs a target stamp (sdns://BQ…) or a relay stamp (sdns://hQ…)"},
		{[]string{"-proxy", "sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk", "-target", "odoh.example"},
			"is an ODoH target stamp: give it as the target"},
		{[]string{"-proxy", "p.example", "-target", "odoh.example", "-resolve", "odoh.example:443"}, "want HOST:PORT:ADDR, such as odoh.example:443:192.0.2.1"},
		{[]string{"-proxy", "p.example", "-target", "odoh.example", "-ca", "/dev/null"}, "holds no PEM certificate"},
		// Static configs that do not parse: the flag, and where good
		// ones come from; the odoh package's "odoh: " prefix not
		// repeated after the program's.
		{[]string{"-proxy", "p.example", "-target", "odoh.example", "-config-file", "/dev/null"},
			"odoh: -config-file /dev/null: not an ObliviousDoHConfigs (malformed: configs list is 0 bytes, shorter than its length field): " +
				"give the target's configs as odoh configs prints them"},
		{[]string{"-proxy", "p.example", "-target", "odoh.example", "-config", "0001"},
			"odoh: -config: not an ObliviousDoHConfigs (malformed: "},
	} {
		_, errOut, code := runBin(t, nil, append(tc.args, "example.com")...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, ": odoh: ") {
			t.Errorf("%q: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// HOST[:PORT] and a bare https origin stand for this project's paths.
func TestEndpointShorthands(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example":            "https://relay.example/dns-query{?targethost,targetpath}",
		"127.0.0.1:8444":           "https://127.0.0.1:8444/dns-query{?targethost,targetpath}",
		"[::1]:8444":               "https://[::1]:8444/dns-query{?targethost,targetpath}",
		"https://relay.example":    "https://relay.example/dns-query{?targethost,targetpath}",
		"https://relay.example/":   "https://relay.example/",
		"https://relay.example/p":  "https://relay.example/p",
		"https://r/{targethost}/x": "https://r/{targethost}/x",
		"sdns://hQ":                "sdns://hQ",
	} {
		if got := expandProxy(in); got != want {
			t.Errorf("expandProxy(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"odoh.example":        "https://odoh.example/dns-query",
		"127.0.0.1:8443":      "https://127.0.0.1:8443/dns-query",
		"localhost":           "https://localhost/dns-query",
		"https://o.example/q": "https://o.example/q",
		"o.example/q":         "o.example/q",
		"example":             "example",
	} {
		if got := expandTarget(in); got != want {
			t.Errorf("expandTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStampJSON(t *testing.T) {
	out, _, code := runBin(t, nil, "stamp", "-json", "-nolog", "-dnssec", "-nofilter",
		"-target", "https://odoh.cloudflare-dns.com/dns-query", "-proxy", "https://odoh-relay.edgecompute.app/",
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var stamps []struct {
		Stamp, Proto, URL string
		Usable            bool
	}
	if err := json.Unmarshal([]byte(out), &stamps); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []string{
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk",
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk",
		"sdns://hQcAAAAAAAAAAAAab2RvaC1yZWxheS5lZGdlY29tcHV0ZS5hcHABLw",
	}
	if len(stamps) != 3 {
		t.Fatalf("%d stamps", len(stamps))
	}
	for i, s := range stamps {
		if s.Stamp != want[i] || !s.Usable {
			t.Errorf("stamp %d = %+v, want %s", i, s, want[i])
		}
	}
	if stamps[0].Proto != "odoh-target" || stamps[2].Proto != "odoh-relay" {
		t.Errorf("protocols %q, %q", stamps[0].Proto, stamps[2].Proto)
	}
}

// odoh stamp decodes every kind of stamp, and says which odoh cannot use.
func TestStampDecodesEveryProtocol(t *testing.T) {
	out, errOut, code := runBin(t, nil, "stamp", "-json",
		"sdns://AgcAAAAAAAAAAAAPZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk",
		"sdns://AQEAAAAAAAAADjE5Mi4wLjIuNTM6NDQzIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fFzIuZG5zY3J5cHQtY2VydC5leGFtcGxl",
		"sdns://gQ4xOTIuMC4yLjU0OjQ0Mw")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var stamps []struct {
		Proto, Host, Path, Addr string
		ProviderName            string `json:"provider_name"`
		Usable                  bool
	}
	if err := json.Unmarshal([]byte(out), &stamps); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(stamps) != 3 || stamps[0].Proto != "doh" || stamps[0].Host != "dns.example.com" || stamps[0].Usable ||
		stamps[1].Proto != "dnscrypt" || stamps[1].ProviderName != "2.dnscrypt-cert.example" || stamps[1].Addr != "192.0.2.53:443" ||
		stamps[2].Proto != "dnscrypt-relay" || stamps[2].Addr != "192.0.2.54:443" || stamps[2].Usable {
		t.Errorf("decoded %+v", stamps)
	}
	text, _, _ := runBin(t, nil, "stamp", "sdns://AgcAAAAAAAAAAAAPZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk")
	if !strings.HasPrefix(text, "doh\thttps://dns.example.com/dns-query\tsdns://") || !strings.Contains(text, "(not ODoH: odoh cannot use it)") {
		t.Errorf("text: %q", text)
	}
	_, errOut, code = runBin(t, nil, "stamp", "sdns://garbage")
	if code != 1 || !strings.Contains(errOut, "bad address (is it cut short? copy the whole stamp)") {
		t.Errorf("garbage: exit %d, %q", code, errOut)
	}
}

// A host too long for a stamp is refused, never encoded into a stamp that
// decodes to another host.
func TestStampRefusesLongHost(t *testing.T) {
	host := strings.Repeat("a", 250) + ".example"
	out, errOut, code := runBin(t, nil, "stamp", "-target", "https://"+host+"/dns-query")
	if code != 2 || out != "" || !strings.Contains(errOut, "over 255") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestKeygen(t *testing.T) {
	f := filepath.Join(t.TempDir(), "seed")
	if _, errOut, code := runBin(t, nil, "keygen", "-out", f); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 32 || st.Mode().Perm() != 0o600 {
		t.Fatalf("size %d mode %v", st.Size(), st.Mode())
	}
	first, _ := os.ReadFile(f)
	if _, errOut, code := runBin(t, nil, "keygen", f); code == 0 || !strings.Contains(errOut, "give -force to overwrite it") {
		t.Fatalf("overwrite allowed: %d %s", code, errOut)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runBin(t, nil, "keygen", f, "-force"); code != 0 {
		t.Fatal("-force failed")
	}
	second, _ := os.ReadFile(f)
	st, _ = os.Stat(f)
	if string(first) == string(second) || st.Mode().Perm() != 0o600 {
		t.Fatalf("not rewritten or mode %v", st.Mode())
	}
	if _, errOut, code := runBin(t, nil, "keygen"); code != 2 || !strings.Contains(errOut, "keygen wants one FILE to write") {
		t.Errorf("no file: exit %d, %q", code, errOut)
	}
}

func TestURLList(t *testing.T) {
	var l urlList
	_ = l.Set("https://a/q{?targethost,targetpath}, https://b/proxy")
	_ = l.Set("https://c/{targethost}/{targetpath}")
	if len(l) != 3 || l[0] != "https://a/q{?targethost,targetpath}" || l[1] != "https://b/proxy" {
		t.Fatalf("%q", l)
	}
}

// With -proxy, configs come through the proxy's tunnel (the client's
// default) unless -configs-from-target or -configs-via-relay says
// otherwise; with -direct, from the target.
func TestConfigSourceFlags(t *testing.T) {
	const (
		proxy  = "https://proxy.example/dns-query{?targethost,targetpath}"
		target = "https://odoh.example.net/dns-query"
	)
	testCases := []struct {
		args []string
		want client.ConfigSource
		bad  bool
	}{
		{[]string{"-proxy", proxy, "-target", target}, client.ConfigDefault, false},
		{[]string{"-proxy", proxy, "-target", target, "-configs-via-relay", "-pin", "odoh.example.net=key:ab"}, client.ConfigViaRelay, false},
		{[]string{"-proxy", proxy, "-target", target, "-configs-from-target"}, client.ConfigFromTarget, false},
		{[]string{"-direct", "-target", target}, client.ConfigDefault, false},
		{[]string{"-proxy", proxy, "-target", target, "-pin", "odoh.example.net=sha1:ab"}, 0, true},
		{[]string{"-proxy", proxy, "-target", target, "-config", "00", "-configs-from-target"}, 0, true},
		{[]string{"-proxy", proxy, "-target", target, "-configs-via-relay", "-configs-from-target"}, 0, true},
	}
	for _, tc := range testCases {
		var o clientFlags
		fs := newFlagSet("test")
		o.add(fs, client.DefaultTimeout)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		co, err := o.config(nil)
		var ee *exitError
		if tc.bad {
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Errorf("%q: err = %v, want a usage error", tc.args, err)
			}
			continue
		}
		if err != nil || co.ConfigSource != tc.want {
			t.Errorf("%q: source %v, err %v; want %v", tc.args, co.ConfigSource, err, tc.want)
		}
	}
	_, errOut, code := runBin(t, nil, "-proxy", proxy, "-target", target, "-configs-via-relay", "-configs-from-target", "example.com")
	if code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("both sources: exit %d, stderr %q", code, errOut)
	}
	if help, _, _ := runBin(t, nil, "help", "query"); !strings.Contains(help, "-configs-from-target") {
		t.Error("help query does not document -configs-from-target")
	}
}

// The client's default timeout outlasts the proxy's: its 504 reaches the
// user rather than a bare deadline.
func TestDefaultTimeoutOutlastsTheProxy(t *testing.T) {
	if client.DefaultTimeout <= proxy.DefaultResponseTimeout || proxy.DefaultResponseTimeout <= target.DefaultQueryTimeout {
		t.Errorf("timeouts: client %v, proxy's response %v, target's query %v: each must outlast the next",
			client.DefaultTimeout, proxy.DefaultResponseTimeout, target.DefaultQueryTimeout)
	}
	fs := commands()["query"].doc.Flags
	if got := fs.Lookup("timeout").DefValue; got != client.DefaultTimeout.String() {
		t.Errorf("query -timeout defaults to %s, want the client's %v", got, client.DefaultTimeout)
	}
}

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/odoh"
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

func TestUsageAndVersion(t *testing.T) {
	out, _, code := runBin(t, nil, "-h")
	if code != 0 || !strings.Contains(out+"", "") {
		t.Fatalf("-h exit %d", code)
	}
	_, errOut, _ := runBin(t, nil, "-h")
	for _, want := range []string{"Usage:", "Options", "Examples:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	out, _, code = runBin(t, nil, "-version")
	if code != 0 || !strings.HasPrefix(out, "odoh ") {
		t.Errorf("-version: %d %q", code, out)
	}
}

func TestNoProxyRefused(t *testing.T) {
	_, errOut, code := runBin(t, nil, "-target", "https://127.0.0.1:1/dns-query", "example.com")
	if code != 2 || !strings.Contains(errOut, "-direct") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// Same through the environment.
	_, errOut, code = runBin(t, []string{"ODOH_TARGET=https://127.0.0.1:1/dns-query"}, "example.com")
	if code != 2 || !strings.Contains(errOut, "no proxy") {
		t.Fatalf("env: exit %d, stderr %q", code, errOut)
	}
}

func TestSameOperatorRefused(t *testing.T) {
	_, errOut, code := runBin(t, nil, "-proxy", "https://a.example.com/p{?targethost,targetpath}",
		"-target", "https://b.example.com/dns-query", "example.com")
	if code != 2 || !strings.Contains(errOut, "registrable domain") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
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
	if code != 1 || !strings.HasPrefix(errOut, "odoh: ") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestBadTemplate(t *testing.T) {
	_, errOut, code := runBin(t, nil, "-proxy", "http://p.example/q{?targethost,targetpath}",
		"-target", "https://odoh.example.net/dns-query", "example.com")
	if code == 0 || !strings.Contains(errOut, "https") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestStampJSON(t *testing.T) {
	out, _, code := runBin(t, nil, "stamp", "-json", "-nolog", "-dnssec", "-nofilter",
		"-target", "https://odoh.cloudflare-dns.com/dns-query", "-proxy", "https://odoh-relay.edgecompute.app/",
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var stamps []struct{ Stamp, Proto, URL string }
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
		if s.Stamp != want[i] {
			t.Errorf("stamp %d = %s, want %s", i, s.Stamp, want[i])
		}
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
	if _, errOut, code := runBin(t, nil, "keygen", "-out", f); code == 0 || !strings.Contains(errOut, "-force") {
		t.Fatalf("overwrite allowed: %d %s", code, errOut)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runBin(t, nil, "keygen", "-out", f, "-force"); code != 0 {
		t.Fatal("-force failed")
	}
	second, _ := os.ReadFile(f)
	st, _ = os.Stat(f)
	if string(first) == string(second) || st.Mode().Perm() != 0o600 {
		t.Fatalf("not rewritten or mode %v", st.Mode())
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
		var o options
		if err := newFlagSet(&o, io.Discard).Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		co, err := o.clientOptions(nil)
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
	if _, help, _ := runBin(t, nil, "-h"); !strings.Contains(help, "-configs-from-target") {
		t.Error("-h does not document -configs-from-target")
	}
}

package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An odoh-target started in the proxy's place answers the configs relay
// with configs of its own and would decrypt every query sealed to them
// (issue 8's forgery, with the real binaries). By default the client asks
// it for a tunnel, gets a 404, and fails closed: it says what happened and
// which options remain, and seals nothing to the impostor's key; with the
// relay and a key pin the impostor's configs are refused. Through the real
// proxy the same client answers.
func TestImpostorTargetAsProxy(t *testing.T) {
	s := newStack(t, stackOptions{})
	zone := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(zone, []byte("example.test. 300 IN SOA ns.example.test. h.example.test. 1 3600 600 86400 60\n"+
		"www.example.test. 300 IN A 203.0.113.66\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rogue := start(t, "odoh-target", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-cert", s.CertFile, "-key", s.KeyFile, "-local-zone", zone)
	args := func(extra ...string) []string {
		return append([]string{
			"-proxy", "https://" + rogue.Listen + "/dns-query{?targethost,targetpath}",
			"-target", "https://" + s.Target.Listen + "/dns-query",
			"-ca", s.CAFile, "-allow-same-operator",
		}, extra...)
	}
	posts := func() float64 { return metric(t, rogue.Admin, "odoh_target_requests_total", `protocol="odoh"`) }

	for _, h3 := range []bool{false, true} {
		extra := []string{"www.example.test", "+short"}
		if h3 {
			extra = append(extra, "-http3")
		}
		out, errOut, code := runCLI(t, args(extra...)...)
		want := "odoh: target configs unavailable: CONNECT " + s.Target.Listen + " via https://" + rogue.Listen +
			" answered HTTP 404: proxy offers no configs tunnel\n" +
			"odoh: this proxy cannot carry a configs fetch that it cannot forge: use -configs-from-target " +
			"(the target then sees your address at each fetch), -config or -config-file, or -configs-via-relay with -pin HOST=key:HEX\n"
		if code != 1 || out != "" || errOut != want {
			t.Fatalf("h3=%v: exit %d, stdout %q, stderr:\n%q\nwant:\n%q", h3, code, out, errOut, want)
		}
	}
	if n := posts(); n != 0 {
		t.Fatalf("the impostor received %v ODoH queries", n)
	}

	// The relay alone, with the target's key pinned: the impostor's own
	// configs match no pin.
	key := configsOf(t, s).KeyID
	out, errOut, code := runCLI(t, args("-configs-via-relay", "-pin", "127.0.0.1=key:"+key, "www.example.test")...)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "odoh: target configs unavailable: none of the 1 configs of 127.0.0.1 has a pinned key ID: no match for the pins\n") {
		t.Fatalf("relay with a pin: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	if n := posts(); n != 0 {
		t.Fatalf("the impostor received %v ODoH queries", n)
	}

	// Configs from the target itself are the target's: the impostor gets
	// the sealed query (the counter above can count) and cannot open it.
	out, _, code = runCLI(t, args("-configs-from-target", "www.example.test", "+short")...)
	if code != 1 || strings.Contains(out, "203.0.113.66") {
		t.Fatalf("configs from the target via the impostor: exit %d, stdout %q", code, out)
	}
	if n := posts(); n != 1 {
		t.Fatalf("the impostor received %v ODoH queries, want the 1 it could not open", n)
	}
	if n := metric(t, rogue.Admin, "odoh_target_requests_total", `result="ok"`); n != 0 {
		t.Fatalf("the impostor answered %v queries", n)
	}

	// The honest proxy, same target, same client flags.
	out, errOut, code = runCLI(t, s.clientArgs("www.example.test", "+short")...)
	if code != 0 || out != "192.0.2.80\n" {
		t.Fatalf("through the real proxy: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
}

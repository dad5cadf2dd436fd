package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testlog"
)

// runCLI runs the CLI and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "odoh"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("odoh %v did not finish", args)
		return "", "", -1
	}
}

// clientArgs points the CLI at the stack: the proxy as an RFC 6570 template
// and the target by URL, both on 127.0.0.1 (hence -allow-same-operator).
func (s *stack) clientArgs(extra ...string) []string {
	return append([]string{
		"-proxy", "https://" + s.Proxy.Listen + "/dns-query{?targethost,targetpath}",
		"-target", "https://" + s.Target.Listen + "/dns-query",
		"-ca", s.CAFile, "-allow-same-operator",
	}, extra...)
}

// The CLI looks names up through the real proxy and target, as a user
// would run it: dig-like text, JSON, HTTP/3, configs through the proxy's
// tunnel (the default with a proxy) and, when chosen, from the target or
// from the relay with a key pin.
func TestCLIQuery(t *testing.T) {
	s := newStack(t, stackOptions{})

	out, errOut, code := runCLI(t, s.clientArgs("www.example.test", "A")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"www.example.test.", "192.0.2.80", "NOERROR", s.Proxy.Listen, s.Target.Listen} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	host, _, _ := net.SplitHostPort(s.Target.Listen)
	pin := host + "=key:" + configsOf(t, s).KeyID
	for _, extra := range [][]string{{"-json"}, {"-json", "-http3"}, {"-json", "-configs-via-relay", "-pin", pin}, {"-json", "-configs-from-target"}} {
		out, errOut, code := runCLI(t, s.clientArgs(append(extra, "www.example.test", "AAAA")...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, errOut)
		}
		var r struct {
			Status string
			Answer []struct{ Name, Type, Data string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", extra, err, out)
		}
		if r.Status != "NOERROR" || len(r.Answer) != 1 || r.Answer[0].Data != "2001:db8::80" {
			t.Fatalf("%v: %+v", extra, r)
		}
	}

	// NXDOMAIN is an answer: exit 0.
	out, _, code = runCLI(t, s.clientArgs("nope.example.test")...)
	if code != 0 || !strings.Contains(out, "NXDOMAIN") {
		t.Fatalf("NXDOMAIN: exit %d\n%s", code, out)
	}
}

// Transport and protocol failures exit non-zero with a message.
func TestCLIErrors(t *testing.T) {
	s := newStack(t, stackOptions{})
	// A target the proxy does not allow: the proxy's 403 is reported.
	args := s.clientArgs("www.example.test")
	args[3] = "https://127.0.0.1:1/dns-query"
	_, errOut, code := runCLI(t, append(args, "-config", configsHex(t, s))...)
	if code == 0 || !strings.Contains(errOut, "403") || !strings.Contains(errOut, "http_request_denied") {
		t.Fatalf("denied target: exit %d, stderr %q", code, errOut)
	}
	// No proxy and no -direct: refused before any network use.
	_, errOut, code = runCLI(t, "-target", "https://"+s.Target.Listen+"/dns-query", "-ca", s.CAFile, "www.example.test")
	if code == 0 || errOut == "" {
		t.Fatalf("no proxy: exit %d, stderr %q", code, errOut)
	}
}

// Through a proxy without the configs tunnel (odoh-proxy -no-tunnel, as
// a plain relay), the CLI says so and names the options, and sends no
// query; with -configs-from-target it answers.
func TestCLIProxyWithoutTunnel(t *testing.T) {
	s := newStack(t, stackOptions{proxyArgs: []string{"-no-tunnel"}})
	_, errOut, code := runCLI(t, s.clientArgs("www.example.test")...)
	want := "odoh: target configs unavailable: CONNECT " + s.Target.Listen + " via https://" + s.Proxy.Listen +
		" answered HTTP 405 (Proxy-Status: odoh-proxy; error=http_request_error; details=\"no tunnel here\"): proxy offers no configs tunnel\n" +
		"odoh: this proxy cannot carry a configs fetch that it cannot forge: use -configs-from-target " +
		"(the target then sees your address at each fetch), -config or -config-file, or -configs-via-relay with -pin HOST=key:HEX\n"
	// The error once: the client's warning of the failed fetch, which says
	// the same, is not repeated above it.
	if code != 1 || errOut != want {
		t.Fatalf("exit %d, stderr:\n%q\nwant:\n%q", code, errOut, want)
	}
	out, errOut, code := runCLI(t, s.clientArgs("-configs-from-target", "www.example.test")...)
	if code != 0 || !strings.Contains(out, "192.0.2.80") {
		t.Fatalf("-configs-from-target: exit %d: %s", code, errOut)
	}
}

// configsHex returns the target's configs in hex, as `odoh configs -json`
// prints them.
func configsHex(t *testing.T, s *stack) string {
	t.Helper()
	return configsOf(t, s).Config
}

// configsOf returns the target's first config as `odoh configs -json`
// prints it.
func configsOf(t *testing.T, s *stack) struct{ Config, KeyID string } {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"configs", "-json"}, s.clientArgs()...)...)
	if code != 0 {
		t.Fatalf("configs: exit %d: %s", code, errOut)
	}
	type config struct {
		Config string
		KeyID  string `json:"key_id"`
	}
	var r []struct {
		Configs []config
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		// A single object rather than a list.
		var one struct{ Configs []config }
		if err2 := json.Unmarshal([]byte(out), &one); err2 != nil {
			t.Fatalf("configs output: %v\n%s", err, out)
		}
		r = append(r, one)
	}
	if len(r) == 0 || len(r[0].Configs) == 0 {
		t.Fatalf("no configs in %s", out)
	}
	return struct{ Config, KeyID string }(r[0].Configs[0])
}

// The stub answers dig over UDP and TCP through the real proxy and target,
// and a seed from `odoh keygen` is what the target's -seed-file takes.
func TestStubWithDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dig is required in CI (Debian bind9-dnsutils)")
		}
		t.Skip("SKIP: dig not installed (Debian bind9-dnsutils)")
	}
	s := newStack(t, stackOptions{})
	stub := startCmd(t, "odoh", append([]string{"stub", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-format", "json"},
		s.clientArgs()...)...)
	addr, _ := stubAddrs(t, stub)
	_, port, _ := net.SplitHostPort(addr)

	for _, mode := range []string{"+notcp", "+tcp"} {
		out, err := exec.Command(dig, "@127.0.0.1", "-p", port, mode, "+time=5", "+tries=1", "www.example.test", "A").CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s\nstub logs:\n%s", mode, err, out, stub)
		}
		if !strings.Contains(string(out), "192.0.2.80") || !strings.Contains(string(out), "status: NOERROR") {
			t.Fatalf("dig %s:\n%s", mode, out)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	// A UDP and a TCP socket on the same free port.
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		u, err := net.ListenPacket("udp", "127.0.0.1:"+port)
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return ""
}

// startCmd runs a long-lived binary until the test ends; it returns its
// combined output collector.
func startCmd(t *testing.T, name string, args ...string) *testlog.Buffer {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	logs := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return logs
}

func TestKeygenSeedServes(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed")
	if _, errOut, code := runCLI(t, "keygen", "-out", seed); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	st, err := os.Stat(seed)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("seed mode %v, want 0600", st.Mode().Perm())
	}
	s := newStack(t, stackOptions{targetArgs: []string{"-seed-file", seed}})
	if out, errOut, code := runCLI(t, s.clientArgs("www.example.test")...); code != 0 || !strings.Contains(out, "192.0.2.80") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
}

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/odoh"
)

// binDir holds the binaries TestMain builds once for every test.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "odoh-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "../cmd/...")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running odoh-target or odoh-proxy.
type daemon struct {
	cmd    *exec.Cmd
	Listen string // the HTTPS address it serves
	Admin  string
	logs   *testlog.Buffer
	done   chan error

	stopOnce sync.Once
}

// start runs a daemon binary, waits for its "serving" log line and stops it
// with SIGTERM when the test ends.
func start(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	d, err := tryStart(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// errPortTaken is tryStart's error when the daemon could not bind an
// address it was given: a port found free was taken before it bound it.
var errPortTaken = errors.New("address already in use")

// tryStart is start, returning the daemon's failure to start instead of
// ending the test (errPortTaken when its address was taken).
func tryStart(t *testing.T, name string, args ...string) (*daemon, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, logs: &testlog.Buffer{}, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			d.logs.Write(append(bytes.Clone(line), '\n'))
			if d.Listen == "" {
				var rec struct{ Msg, Listen, Admin string }
				if json.Unmarshal(line, &rec) == nil && strings.HasSuffix(rec.Msg, "serving") && rec.Listen != "" {
					d.Listen, d.Admin = rec.Listen, rec.Admin
					close(ready)
				}
			}
		}
		d.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-d.done:
		if strings.Contains(d.logs.String(), "address already in use") {
			return nil, fmt.Errorf("%s exited before serving (%v): %w:\n%s", name, err, errPortTaken, d.logs)
		}
		return nil, fmt.Errorf("%s exited before serving (%v):\n%s", name, err, d.logs)
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-d.done
		return nil, fmt.Errorf("%s did not start in time:\n%s", name, d.logs)
	}
	t.Cleanup(func() {
		d.stop(t, name)
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, d.logs)
		}
	})
	return d, nil
}

// startOnFreePort starts a daemon that must be told its address before
// it binds it (to name itself in its own flags): args gives its flags for
// an address, on a port found free. Should the port be taken before the
// daemon binds it, it is started again on another, a few times.
func startOnFreePort(t *testing.T, name string, args func(addr string) []string) (*daemon, []string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a := args("127.0.0.1:" + freePort(t))
		d, err := tryStart(t, name, a...)
		if err == nil {
			return d, a
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("%s: its port was taken before it bound it; again on another", name)
	}
}

// stop sends SIGTERM and waits for a clean exit; later calls do nothing.
func (d *daemon) stop(t *testing.T, name string) {
	t.Helper()
	d.stopOnce.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM:\n%s", name, err, d.logs)
			}
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			t.Errorf("%s did not stop after SIGTERM", name)
		}
	})
}

// stack is a whole deployment on loopback: Unbound ← target ← proxy.
type stack struct {
	CA      *testca.CA
	CAFile  string
	Unbound string
	Target  *daemon
	Proxy   *daemon

	// What the fault tests need to stop and restart the parts.
	UnboundServer         *testunbound.Server
	CertFile, KeyFile     string
	SeedFile              string
	targetArgs, proxyArgs []string // as started, with their listen addresses
}

// Names Unbound answers, and the address each maps to.
var zoneData = []string{
	"www.example.test. 300 IN A 192.0.2.80",
	"www.example.test. 300 IN AAAA 2001:db8::80",
	"mail.example.test. 300 IN MX 10 mx.example.test.",
}

type stackOptions struct {
	targetArgs, proxyArgs []string
	// targetAt, when set, gives more flags of the target for the address
	// it listens on, which they name (e.g. -ohttp-authority): the target
	// is then told its address instead of choosing one.
	targetAt func(addr string) []string
	// proxyFor gives more flags of the proxy for the target's address.
	proxyFor func(target string) []string
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	ca := testca.New(t)
	certFile, keyFile := ca.Issue(t)
	s := &stack{CA: ca, CAFile: ca.CAFile(t)}
	s.UnboundServer = testunbound.StartServer(t, testunbound.Options{Zones: []string{"example.test."}, LocalData: zoneData})
	s.Unbound = s.UnboundServer.Addr
	seed := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(seed, bytes.Repeat([]byte{0x5e}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	s.CertFile, s.KeyFile, s.SeedFile = certFile, keyFile, seed
	s.targetArgs = append([]string{
		"-admin", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-seed-file", seed, "-upstream", "udp://" + s.Unbound,
	}, o.targetArgs...)
	if o.targetAt != nil {
		s.Target, _ = startOnFreePort(t, "odoh-target", func(addr string) []string {
			return append(append([]string{"-listen", addr}, s.targetArgs...), o.targetAt(addr)...)
		})
		s.targetArgs = append(s.targetArgs, o.targetAt(s.Target.Listen)...)
	} else {
		s.Target = start(t, "odoh-target", append([]string{"-listen", "127.0.0.1:0"}, s.targetArgs...)...)
	}
	s.targetArgs = append([]string{"-listen", s.Target.Listen}, s.targetArgs...)
	s.proxyArgs = append([]string{
		"-admin", "127.0.0.1:0", "-cert", certFile, "-key", keyFile,
		"-allow-target", s.Target.Listen, "-ca", s.CAFile,
	}, o.proxyArgs...)
	if o.proxyFor != nil {
		s.proxyArgs = append(s.proxyArgs, o.proxyFor(s.Target.Listen)...)
	}
	s.Proxy = start(t, "odoh-proxy", append([]string{"-listen", "127.0.0.1:0"}, s.proxyArgs...)...)
	s.proxyArgs = append([]string{"-listen", s.Proxy.Listen}, s.proxyArgs...)
	return s
}

// restartTarget starts a new odoh-target on the address and with the
// flags of the first (after the test stopped it).
func (s *stack) restartTarget(t *testing.T) {
	t.Helper()
	s.Target = start(t, "odoh-target", s.targetArgs...)
}

// restartProxy starts a new odoh-proxy on the address and with the flags
// of the first (after the test stopped it).
func (s *stack) restartProxy(t *testing.T) {
	t.Helper()
	s.Proxy = start(t, "odoh-proxy", s.proxyArgs...)
}

// httpClient returns a client speaking h2 (or h3) that trusts the test CA
// and never follows redirects.
func (s *stack) httpClient(t *testing.T, h3 bool) *http.Client {
	var rt http.RoundTripper
	if h3 {
		tr := &http3.Transport{TLSClientConfig: s.CA.ClientTLS()}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	} else {
		tr := &http.Transport{TLSClientConfig: s.CA.ClientTLS(), ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	return &http.Client{
		Transport:     rt,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// proxyURL is the RFC 6570 expansion of the proxy's template for the target.
func (s *stack) proxyURL() string {
	return "https://" + s.Proxy.Listen + "/dns-query?" + url.Values{
		"targethost": {s.Target.Listen}, "targetpath": {"/dns-query"},
	}.Encode()
}

// configs fetches the target's configs through the proxy's config relay.
func (s *stack) configs(t *testing.T, c *http.Client) []*odoh.Config {
	t.Helper()
	resp, err := c.Get("https://" + s.Proxy.Listen + "/.well-known/odohconfigs?targethost=" + url.QueryEscape(s.Target.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("configs through the proxy: %s %q", resp.Status, b)
	}
	cfgs, err := odoh.ParseConfigs(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfgs
}

// post sends an ODoH message through the proxy.
func (s *stack) post(t *testing.T, c *http.Client, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.proxyURL(), bytes.NewReader(body))
	req.Header.Set("Content-Type", odoh.ContentType)
	req.Header.Set("Accept", odoh.ContentType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func query(name string, qtype uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0
	b, _ := m.Pack()
	return b
}

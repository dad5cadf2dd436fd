package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// buildBinary builds odoh-target once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "odoh-target-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "odoh-target")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatalf("building odoh-target: %v", err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := buildOnce(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

const zoneV1 = `$ORIGIN zone.test.
$TTL 60
@   IN SOA ns.zone.test. admin.zone.test. 1 3600 600 86400 60
www IN A 192.0.2.1
`

// proc is a running odoh-target process.
type proc struct {
	cmd            *exec.Cmd
	addr, admin    string
	mu             sync.Mutex
	log            bytes.Buffer
	lines          chan map[string]any
	certFile, zone string
	exited         chan error
}

func (d *proc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

func startDaemon(t *testing.T, ca *testca.CA, extra ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := ca.Issue(t)
	// Copy the certificate so the test can break it.
	d := &proc{certFile: filepath.Join(dir, "cert.pem"), zone: filepath.Join(dir, "zone"),
		lines: make(chan map[string]any, 100), exited: make(chan error, 1)}
	copyFile(t, certFile, d.certFile)
	if err := os.WriteFile(d.zone, []byte(zoneV1), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-cert", d.certFile, "-key", keyFile, "-local-zone", d.zone, "-drain-timeout", "5s"}
	if !slices.Contains(extra, "-upstream") {
		args = append(args, "-upstream", "udp://127.0.0.1:9") // nothing listens there
	}
	args = append(args, extra...)
	d.cmd = exec.Command(binary(t), args...)
	d.cmd.Env = append(os.Environ(), "ODOH_TARGET_DOH=true")
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.Write(sc.Bytes())
			d.log.WriteByte('\n')
			d.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case d.lines <- m:
				default:
				}
			}
		}
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("odoh-target log:\n%s", d.logs())
		}
	})
	m := d.waitLog(t, "odoh-target serving")
	d.addr, _ = m["listen"].(string)
	d.admin, _ = m["admin"].(string)
	return d
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits for a log line with message msg.
func (d *proc) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-d.lines:
			if m["msg"] == msg {
				return m
			}
		case err := <-d.exited:
			t.Fatalf("odoh-target exited (%v) before logging %q", err, msg)
		case <-timeout:
			t.Fatalf("no log line %q", msg)
		}
	}
}

func clients(ca *testca.CA) map[string]*http.Client {
	return map[string]*http.Client{
		"h2": {Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}},
		"h3": {Timeout: 5 * time.Second, Transport: &http3.Transport{TLSClientConfig: ca.ClientTLS()}},
	}
}

// ask sends an ODoH query for name A and returns the first A record.
func ask(t *testing.T, c *http.Client, addr, name string) string {
	t.Helper()
	resp, err := c.Get("https://" + addr + "/.well-known/odohconfigs")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cfgs, err := odoh.ParseConfigs(raw)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
	msg, qctx, err := odoh.SealQuery(cfgs[0], wire)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Post("https://"+addr+"/dns-query", odoh.ContentType, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	plain, err := qctx.OpenResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(plain); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) == 0 {
		return dns.RcodeToString[m.Rcode]
	}
	return m.Answer[0].(*dns.A).A.String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonServesReloadsAndDrains(t *testing.T) {
	ca := testca.New(t)
	seed := bytes.Repeat([]byte{0x5e}, odoh.SeedSize)
	seedFile := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(seedFile, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, ca, "-seed-file", seedFile)
	cs := clients(ca)
	for name, c := range cs {
		if got := ask(t, c, d.addr, "www.zone.test."); got != "192.0.2.1" {
			t.Errorf("%s: answer %s", name, got)
		}
	}
	// The admin endpoints.
	if code, _ := get(t, "http://"+d.admin+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get(t, "http://"+d.admin+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d", code)
	}
	_, metrics := get(t, "http://"+d.admin+"/metrics")
	for _, want := range []string{
		`odoh_target_requests_total{protocol="odoh",result="ok",transport="h2"} 1`,
		`odoh_target_requests_total{protocol="odoh",result="ok",transport="h3"} 1`,
		`odoh_target_key_epoch `, `odoh_build_info{`, `odoh_target_request_duration_seconds_bucket{`,
		`odoh_target_local_zone_records 2`, `odoh_target_upstream_up{upstream="0"} `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, "127.0.0.1") || strings.Contains(metrics, "zone.test") {
		t.Error("metrics carry an address or a name")
	}

	// SIGHUP with a broken certificate and a broken zone: both kept.
	if err := os.WriteFile(d.certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.zone, []byte("garbage ((("), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The log names what failed, each once.
	m := d.waitLog(t, "reload failed for the certificate and the zone, which keep their previous state; the rest was reloaded")
	if e, _ := m["err"].(string); !strings.HasPrefix(e, `certificate: loading certificate "`+d.certFile) ||
		!strings.Contains(e, "\nzone: zone file "+d.zone+": dns: bad owner name") || strings.Count(e, "loading certificate") != 1 {
		t.Errorf("reload error %q", e)
	}
	fresh := clients(ca) // new connections: new TLS handshakes
	for name, c := range fresh {
		if got := ask(t, c, d.addr, "www.zone.test."); got != "192.0.2.1" {
			t.Errorf("%s after a bad reload: answer %s", name, got)
		}
	}
	// SIGHUP with a good zone: the new data is served.
	if err := os.WriteFile(d.zone, []byte(strings.Replace(zoneV1, "192.0.2.1", "192.0.2.99", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "local zone reloaded")
	if got := ask(t, cs["h2"], d.addr, "www.zone.test."); got != "192.0.2.99" {
		t.Errorf("after reload: answer %s, want 192.0.2.99", got)
	}

	// SIGTERM: a clean exit.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	logs := d.logs()
	for _, secret := range []string{hex.EncodeToString(seed), string(seed)} {
		if strings.Contains(logs, secret) {
			t.Error("the seed appears in the log")
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

func TestUpstreamDownServFail(t *testing.T) {
	ca := testca.New(t)
	d := startDaemon(t, ca, "-upstream-timeout", "200ms")
	if got := ask(t, clients(ca)["h2"], d.addr, "example.net."); got != "SERVFAIL" {
		t.Errorf("answer %s, want SERVFAIL", got)
	}
}

func TestVersionHelpAndBadFlags(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "odoh-target ") {
		t.Errorf("-version: %q, %v", out, err)
	}
	out, err = exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"Usage:", "Examples:", "-seed-file", "ODOH_TARGET_", "-help-all"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-h lacks %q", want)
		}
	}
	testCases := []struct {
		name string
		args []string
		env  string
	}{
		{"no certificate", nil, ""},
		{"rotation too short", []string{"-cert", "c", "-key", "k", "-rotate", "1s"}, ""},
		{"bad env value", []string{"-cert", "c", "-key", "k"}, "ODOH_TARGET_CACHE_SIZE=lots"},
		{"backoff above its cap", []string{"-cert", "c", "-key", "k", "-upstream-backoff", "1m", "-upstream-max-backoff", "10s"}, ""},
		{"zero max fails", []string{"-cert", "c", "-key", "k", "-upstream-max-fails", "0"}, ""},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want 2; output %s", err, out)
			}
		})
	}
}

func TestReadSeed(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{1}, odoh.SeedSize)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := readSeed(write("raw", raw)); err != nil || !bytes.Equal(s, raw) {
		t.Errorf("raw seed: %x, %v", s, err)
	}
	if s, err := readSeed(write("hex", []byte(hex.EncodeToString(raw)+"\n"))); err != nil || !bytes.Equal(s, raw) {
		t.Errorf("hex seed: %x, %v", s, err)
	}
	for _, bad := range [][]byte{raw[:31], []byte(strings.Repeat("zz", 32))} {
		if _, err := readSeed(write("bad", bad)); err == nil {
			t.Errorf("seed %q accepted", bad)
		} else if strings.Contains(err.Error(), string(bad)) {
			t.Error("error quotes the seed")
		}
	}
}

// TestMaxBodyFlag: -max-body reaches the largest query of any suite (a
// 64-byte HKDF-SHA512 key ID included) and no further.
func TestMaxBodyFlag(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{{"1", true}, {strconv.Itoa(odoh.MaxQuerySize), true}, {strconv.Itoa(odoh.MaxQuerySize + 1), false}, {"0", false}} {
		c, _, err := parseFlags([]string{"-cert", "c", "-key", "k", "-max-body", tc.value})
		if (err == nil) != tc.ok {
			t.Errorf("-max-body %s: %v", tc.value, err)
		}
		if err == nil && strconv.Itoa(c.maxBody) != tc.value {
			t.Errorf("-max-body %s: parsed %d", tc.value, c.maxBody)
		}
	}
	if c, _, err := parseFlags([]string{"-cert", "c", "-key", "k"}); err != nil || c.maxBody != odoh.MaxQuerySize {
		t.Errorf("default -max-body: %v, %v", c, err)
	}
}

package interop

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testlog"
)

// stubAddrs waits for the stub's "listening" line and returns its DNS and
// admin addresses. The stub logs it once it has tried to fetch the configs,
// which its -timeout (15 s) bounds: the deadline is a hang guard beyond.
func stubAddrs(t *testing.T, logs *testlog.Buffer) (dnsAddr, admin string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Addr, Admin string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "odoh stub listening" {
				return rec.Addr, rec.Admin
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the stub did not start:\n%s", logs)
	return "", ""
}

// The stub's admin listener: /healthz, /readyz and /metrics answer, and a
// name cached by the stub, changed at the target (its local zone, reloaded
// on SIGHUP), is flushed with POST /cache/flush: the next query sees the
// change.
func TestStubAdminFlush(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "zone")
	write := func(addr string) {
		t.Helper()
		data := "flush.test. 300 IN SOA ns.flush.test. admin.flush.test. 1 3600 600 86400 60\n" +
			"www.flush.test. 300 IN A " + addr + "\n"
		if err := os.WriteFile(zone, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("192.0.2.1")
	s := newStack(t, stackOptions{targetArgs: []string{"-local-zone", zone}})
	logs := startCmd(t, "odoh", append([]string{"stub", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-log-format", "json"}, s.clientArgs()...)...)
	dnsAddr, admin := stubAddrs(t, logs)
	lookup := func() string {
		t.Helper()
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(new(dns.Msg).SetQuestion("www.flush.test.", dns.TypeA), dnsAddr)
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("lookup: %v %v\nstub logs:\n%s", r, err, logs)
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+admin+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(http.MethodGet, p); code != http.StatusOK {
			t.Errorf("GET %s: %d %q", p, code, body)
		}
	}

	if got := lookup(); got != "192.0.2.1" {
		t.Fatalf("first answer %s", got)
	}
	write("192.0.2.2")
	if err := s.Target.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.Target.logs.String(), "local zone reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("the target did not reload its zone:\n%s", s.Target.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := lookup(); got != "192.0.2.1" {
		t.Fatalf("answer %s before the flush, want the stub's cached 192.0.2.1", got)
	}
	if code, body := get(http.MethodGet, "/cache/flush?name=www.flush.test"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /cache/flush: %d %q, want 405", code, body)
	}
	if code, body := get(http.MethodPost, "/cache/flush?name=www.flush.test"); code != http.StatusOK || !strings.Contains(body, "flushed 1 entries") {
		t.Fatalf("flush: %d %q", code, body)
	}
	if got := lookup(); got != "192.0.2.2" {
		t.Fatalf("answer %s after the flush, want the changed 192.0.2.2", got)
	}
	_, metrics := get(http.MethodGet, "/metrics")
	// Every series the README names, at what the lookups above made it.
	for _, want := range []string{"odoh_stub_cache_flushes_total 1", "odoh_stub_cache_flushed_entries_total 1",
		"odoh_stub_cache_hits_total 1", "odoh_stub_cache_misses_total 2", "odoh_stub_cache_entries 1",
		"odoh_stub_cache_stale_answers_total 0", "odoh_stub_cache_failure_answers_total 0", "odoh_stub_cache_coalesced_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

package interop

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/odoh"
)

// A query travels client → proxy → target → Unbound and back, over HTTP/2
// and HTTP/3 from the client, and over HTTP/2 and HTTP/3 from the proxy to
// the target.
func TestChain(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clientH3  bool
		proxyArgs []string
	}{
		{name: "h2 client, h2 target", clientH3: false},
		{name: "h3 client, h2 target", clientH3: true},
		{name: "h2 client, h3 target", proxyArgs: []string{"-target-http3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackOptions{proxyArgs: tc.proxyArgs})
			c := s.httpClient(t, tc.clientH3)
			cfgs := s.configs(t, c)

			for _, q := range []struct {
				name  string
				qtype uint16
				want  string
				rcode int
			}{
				{"www.example.test", dns.TypeA, "192.0.2.80", dns.RcodeSuccess},
				{"www.example.test", dns.TypeAAAA, "2001:db8::80", dns.RcodeSuccess},
				{"nope.example.test", dns.TypeA, "", dns.RcodeNameError},
			} {
				body, qctx, err := odoh.SealQuery(cfgs[0], query(q.name, q.qtype))
				if err != nil {
					t.Fatal(err)
				}
				resp, rb := s.post(t, c, body)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s %q (Proxy-Status %q)", q.name, resp.Status, rb, resp.Header.Get("Proxy-Status"))
				}
				if ct := resp.Header.Get("Content-Type"); ct != odoh.ContentType {
					t.Fatalf("content type %q", ct)
				}
				if ps := resp.Header.Get("Proxy-Status"); !strings.Contains(ps, "received-status=200") {
					t.Fatalf("Proxy-Status %q", ps)
				}
				if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
					t.Fatalf("Cache-Control %q", cc)
				}
				wire, err := qctx.OpenResponse(rb)
				if err != nil {
					t.Fatal(err)
				}
				m := new(dns.Msg)
				if err := m.Unpack(wire); err != nil {
					t.Fatal(err)
				}
				if m.Rcode != q.rcode {
					t.Fatalf("%s: rcode %s, want %s", q.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[q.rcode])
				}
				if q.want == "" {
					continue
				}
				if len(m.Answer) != 1 {
					t.Fatalf("%s: answer %v", q.name, m.Answer)
				}
				var got net.IP
				switch rr := m.Answer[0].(type) {
				case *dns.A:
					got = rr.A
				case *dns.AAAA:
					got = rr.AAAA
				}
				if !got.Equal(net.ParseIP(q.want)) {
					t.Fatalf("%s: got %v, want %s", q.name, got, q.want)
				}
			}
		})
	}
}

// A query to a key the target does not hold comes back as the target's 401,
// unchanged by the proxy, which says what it received.
func TestKeyMismatchThroughProxy(t *testing.T) {
	s := newStack(t, stackOptions{})
	c := s.httpClient(t, false)
	stranger, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		t.Fatal(err)
	}
	body, _, err := odoh.SealQuery(stranger.Config(), query("www.example.test", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	resp, rb := s.post(t, c, body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s, want 401", resp.Status)
	}
	if ps := resp.Header.Get("Proxy-Status"); !strings.Contains(ps, "received-status=401") {
		t.Fatalf("Proxy-Status %q", ps)
	}
	if len(rb) != 0 {
		t.Fatalf("body %q, want the target's empty body", rb)
	}
}

// After real traffic, neither daemon's logs name the query, and the proxy's
// logs hold no client address.
func TestLogsHoldNoQueriesOrClients(t *testing.T) {
	s := newStack(t, stackOptions{
		targetArgs: []string{"-log-level", "debug"},
		proxyArgs:  []string{"-log-level", "debug"},
	})
	for _, h3 := range []bool{false, true} {
		c := s.httpClient(t, h3)
		cfgs := s.configs(t, c)
		body, _, err := odoh.SealQuery(cfgs[0], query("www.example.test", dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		if resp, _ := s.post(t, c, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s", resp.Status)
		}
	}
	for name, d := range map[string]*daemon{"target": s.Target, "proxy": s.Proxy} {
		logs := d.logs.String()
		if strings.Contains(logs, "example.test") {
			t.Errorf("%s logged the query name:\n%s", name, logs)
		}
		// Every address in the logs is a listening address of ours; a
		// client's ephemeral port never appears.
		for _, line := range strings.Split(logs, "\n") {
			for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == '"' || r == ' ' || r == ',' }) {
				host, _, err := net.SplitHostPort(f)
				if err != nil || net.ParseIP(host) == nil {
					continue
				}
				if f != s.Target.Listen && f != s.Target.Admin && f != s.Proxy.Listen && f != s.Proxy.Admin {
					t.Errorf("%s logged address %s:\n%s", name, f, line)
				}
			}
		}
	}
}

// -cpuprofile, for operators chasing CPU per query, writes a profile when
// the daemon stops; both daemons share the flag.
func TestCPUProfileFlag(t *testing.T) {
	dir := t.TempDir()
	s := newStack(t, stackOptions{
		targetArgs: []string{"-cpuprofile", filepath.Join(dir, "target.prof")},
		proxyArgs:  []string{"-cpuprofile", filepath.Join(dir, "proxy.prof")},
	})
	s.Proxy.stop(t, "odoh-proxy")
	s.Target.stop(t, "odoh-target")
	for _, f := range []string{"target.prof", "proxy.prof"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

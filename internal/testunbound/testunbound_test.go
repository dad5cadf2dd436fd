package testunbound

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func exchange(t *testing.T, network, addr, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	// A hang guard: a live Unbound answers long before, however loaded
	// the machine.
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	if network == "udp" && !edns {
		c.UDPSize = dns.MinMsgSize // 512: plain DNS over UDP
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

func TestLocalData(t *testing.T) {
	addr := Start(t, Options{
		Zones:     []string{"test."},
		LocalData: []string{"a.test. 300 IN A 192.0.2.1", "a.test. 300 IN AAAA 2001:db8::1", `t.test. 60 IN TXT "hello world"`},
	})
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("address %q not on 127.0.0.1", addr)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, addr, "a.test.", dns.TypeA, false)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s a.test. A: %v", network, r)
		}
		if a, ok := r.Answer[0].(*dns.A); !ok || !a.A.Equal(net.ParseIP("192.0.2.1")) {
			t.Errorf("%s a.test. A answer %v", network, r.Answer[0])
		}
	}
	r := exchange(t, "udp", addr, "t.test.", dns.TypeTXT, true)
	if len(r.Answer) != 1 || strings.Join(r.Answer[0].(*dns.TXT).Txt, "") != "hello world" {
		t.Errorf("t.test. TXT: %v", r.Answer)
	}
	// A name in a static zone without data: NXDOMAIN, at once.
	if r := exchange(t, "udp", addr, "missing.test.", dns.TypeA, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("missing.test. rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	// Anything else is refused, without recursion to the internet: a
	// recursion, with no network, would end in SERVFAIL.
	if r := exchange(t, "udp", addr, "example.com.", dns.TypeA, false); r.Rcode != dns.RcodeRefused {
		t.Errorf("example.com. rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
}

func TestLargeAnswerTruncatesOverUDP(t *testing.T) {
	addr := Start(t, Options{LargeNames: []string{"big.test."}})

	udp := exchange(t, "udp", addr, "big.test.", dns.TypeTXT, false)
	if !udp.Truncated {
		t.Fatalf("plain UDP answer not truncated: %d records", len(udp.Answer))
	}
	if len(udp.Answer) == LargeRecords {
		t.Errorf("truncated answer still holds all %d records", LargeRecords)
	}

	tcp := exchange(t, "tcp", addr, "big.test.", dns.TypeTXT, false)
	if tcp.Truncated || len(tcp.Answer) != LargeRecords {
		t.Fatalf("TCP answer: TC=%v, %d records, want %d", tcp.Truncated, len(tcp.Answer), LargeRecords)
	}
	if n := tcp.Len(); n <= dns.MinMsgSize {
		t.Errorf("TCP answer is %d bytes, want more than 512", n)
	}
	seen := map[string]bool{}
	for _, rr := range tcp.Answer {
		seen[strings.Join(rr.(*dns.TXT).Txt, "")] = true
	}
	for i := range LargeRecords {
		if !seen[LargeTXT(i)] {
			t.Errorf("record %q missing over TCP", LargeTXT(i))
		}
	}

	// With EDNS the answer fits in one UDP datagram.
	if r := exchange(t, "udp", addr, "big.test.", dns.TypeTXT, true); r.Truncated || len(r.Answer) != LargeRecords {
		t.Errorf("EDNS UDP answer: TC=%v, %d records", r.Truncated, len(r.Answer))
	}
}

func TestTwoServers(t *testing.T) {
	a := Start(t, Options{LocalData: []string{"x.test. 300 IN A 192.0.2.10"}})
	b := Start(t, Options{LocalData: []string{"x.test. 300 IN A 192.0.2.20"}})
	if a == b {
		t.Fatalf("both servers on %s", a)
	}
	for addr, want := range map[string]string{a: "192.0.2.10", b: "192.0.2.20"} {
		r := exchange(t, "udp", addr, "x.test.", dns.TypeA, false)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: %v, want %s", addr, r.Answer, want)
		}
	}
}

func TestConfig(t *testing.T) {
	c := config("/tmp/x", 5353, 0, Options{Zones: []string{"test."}, LocalData: []string{"a.test. A 192.0.2.1"}, ExtraConfig: []string{"minimal-responses: yes"}})
	for _, want := range []string{
		"port: 5353", `chroot: ""`, `username: ""`, `module-config: "iterator"`,
		`local-zone: "." refuse`, `local-zone: "test." static`, "local-data: 'a.test. A 192.0.2.1'",
		"do-not-query-localhost: no", "minimal-responses: yes", "control-enable: no", "interface: 127.0.0.1",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("config lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "https-port") {
		t.Errorf("DNS over HTTPS without a certificate:\n%s", c)
	}
	c = config("/tmp/x", 5353, 5354, Options{DoHCertFile: "/tmp/c.pem", DoHKeyFile: "/tmp/k.pem"})
	for _, want := range []string{"interface: 127.0.0.1@5354", "https-port: 5354", `tls-service-pem: "/tmp/c.pem"`, `tls-service-key: "/tmp/k.pem"`} {
		if !strings.Contains(c, want) {
			t.Errorf("DoH config lacks %q:\n%s", want, c)
		}
	}
}

// A stopped Server answers nothing; restarted, it answers again on the
// same address.
func TestServerStopRestart(t *testing.T) {
	s := StartServer(t, Options{Zones: []string{"r.test."}, LocalData: []string{"a.r.test. 60 IN A 192.0.2.9"}})
	// A loaded machine may keep a live Unbound from answering within
	// 300 ms; a stopped one never answers.
	c, short := &dns.Client{Net: "udp", Timeout: 5 * time.Second}, &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	q := new(dns.Msg).SetQuestion("a.r.test.", dns.TypeA)
	if r, _, err := c.Exchange(q, s.Addr); err != nil || len(r.Answer) != 1 {
		t.Fatalf("before the stop: %v %v", r, err)
	}
	s.Stop()
	if _, _, err := short.Exchange(q, s.Addr); err == nil {
		t.Fatal("a stopped Unbound answered")
	}
	s.Restart()
	if r, _, err := c.Exchange(q, s.Addr); err != nil || len(r.Answer) != 1 {
		t.Fatalf("after the restart: %v %v", r, err)
	}
}

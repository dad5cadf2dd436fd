package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
)

// questions renders the questions of a command line as "name type class".
func questions(t *testing.T, args ...string) (string, *queryArgs) {
	t.Helper()
	fs := newFlagSet("test")
	var o clientFlags
	o.add(fs, client.DefaultTimeout)
	fs.Bool("json", false, "")
	qa, err := parseQueryArgs(args, fs)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	var out []string
	for _, q := range qa.questions {
		out = append(out, fmt.Sprintf("%s %s %s", q.name, typeString(q.qtype), classString(q.qclass)))
	}
	return strings.Join(out, ", "), qa
}

// The command lines dig, kdig and doggo users type.
func TestQuestions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"example.com"}, "example.com. A IN"},
		{[]string{"example.com", "aaaa"}, "example.com. AAAA IN"},
		{[]string{"MX", "example.com"}, "example.com. MX IN"},
		{[]string{"example.com", "TYPE65"}, "example.com. HTTPS IN"},
		{[]string{"example.com", "65"}, "example.com. HTTPS IN"},
		{[]string{"example.com", "TYPE65000"}, "example.com. TYPE65000 IN"},
		{[]string{"example.com", "TXT", "CH"}, "example.com. TXT CH"},
		{[]string{"example.com", "CLASS3", "A"}, "example.com. A CH"},
		{[]string{"a.example", "b.example", "MX"}, "a.example. A IN, b.example. MX IN"},
		{[]string{"example.com", "A", "AAAA", "MX"}, "example.com. A IN, example.com. AAAA IN, example.com. MX IN"},
		{[]string{"example.com", "A", "AAAA", "CH"}, "example.com. A CH, example.com. AAAA CH"},
		{[]string{"-x", "192.0.2.1"}, "1.2.0.192.in-addr.arpa. PTR IN"},
		{[]string{"-x", "2001:db8::1"}, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR IN"},
		{[]string{"-x", "192.0.2.1", "example.com"}, "1.2.0.192.in-addr.arpa. PTR IN, example.com. A IN"},
		{[]string{"-t", "MX", "a.example", "b.example", "A"}, "a.example. MX IN, b.example. A IN"},
		{[]string{"-q", "mx", "-c", "CH"}, "mx. A CH"},
		{[]string{"--", "-odd.example"}, "-odd.example. A IN"},
		{[]string{"bücher.example", "AAAA"}, "xn--bcher-kva.example. AAAA IN"},
		{[]string{"ÉCOLE.example"}, "xn--cole-9oa.example. A IN"},
		{[]string{"_dmarc.example.com", "TXT"}, "_dmarc.example.com. TXT IN"},
		{[]string{"Example.COM."}, "Example.COM. A IN"},
		{[]string{"."}, ". A IN"},
	} {
		if got, _ := questions(t, tc.args...); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.args, got, tc.want)
		}
	}
}

// Options, flags and @PROXY mix with the questions in any order.
func TestQueryArgsOptions(t *testing.T) {
	got, qa := questions(t, "@relay.example", "example.com", "-json", "+short", "+dnssec", "+cd", "+norec",
		"-timeout", "3s", "+time=2", "+bufsize=4096", "MX", "+noall", "+answer", "-proxy=p2", "-http3")
	if got != "example.com. MX IN" {
		t.Errorf("questions %s", got)
	}
	o := qa.opts
	if !o.short || !o.dnssec || !o.cd || o.rec || o.timeout != 2*time.Second || o.bufsize != 4096 ||
		o.cmd || o.question || !o.answer || o.stats || o.comments {
		t.Errorf("options %+v", o)
	}
	if strings.Join(qa.proxies, ",") != "relay.example" {
		t.Errorf("proxies %q", qa.proxies)
	}
	if want := "-json -timeout 3s -proxy=p2 -http3"; strings.Join(qa.flags, " ") != want {
		t.Errorf("flags %q, want %q", qa.flags, want)
	}
}

func TestQueryArgsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"example.com", "+time=0"}, "+time=0: want seconds or a duration"},
		{[]string{"example.com", "+bufsize=70000"}, "+bufsize=70000: want a size from 0 to 65535"},
		{[]string{"example.com", "+notcp"}, "there is no UDP to choose"},
		{[]string{"example.com", "IXFR"}, "zone transfers do not run over ODoH"},
		{[]string{"-t", "BOGUS", "example.com"}, `-t "BOGUS": unknown type`},
		{[]string{"-c", "XX", "example.com"}, `-c "XX": unknown class`},
		{[]string{"-x"}, "-x needs a value"},
		{[]string{"-x", "1.2.3"}, "not an IP address"},
		{[]string{strings.Repeat("a", 64) + ".example"}, "is not a domain name"},
		{[]string{"xn--a.example"}, ""}, // punycode as typed is the user's
		{[]string{"a\u200db.example"}, "is not a valid internationalized domain name"},
	} {
		fs := newFlagSet("test")
		var o clientFlags
		o.add(fs, client.DefaultTimeout)
		_, err := parseQueryArgs(tc.args, fs)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// The query carries dig's bits: DO, CD, AD, RD, the buffer size, NSID.
func TestBuildQuery(t *testing.T) {
	_, qa := questions(t, "example.com", "HTTPS", "+dnssec", "+cd", "+ad", "+norec", "+bufsize=1400", "+nsid")
	m := buildQuery(qa.questions[0], &qa.opts)
	opt := m.IsEdns0()
	if m.RecursionDesired || !m.CheckingDisabled || !m.AuthenticatedData || opt == nil || !opt.Do() || opt.UDPSize() != 1400 ||
		len(opt.Option) != 1 || opt.Option[0].Option() != dns.EDNS0NSID || m.Question[0].Qtype != dns.TypeHTTPS {
		t.Errorf("query %v", m)
	}
	_, qa = questions(t, "example.com", "+noedns")
	if m := buildQuery(qa.questions[0], &qa.opts); m.IsEdns0() != nil || !m.RecursionDesired {
		t.Errorf("+noedns: %v", m)
	}
}

// Records line up as dig's do, SVCB parameters read as RFC 9460's
// presentation format, and JSON carries what each record has.
func TestRecordFormats(t *testing.T) {
	for _, tc := range []struct{ rr, text string }{
		{"www.example.test. 300 IN A 192.0.2.1", "www.example.test.\t300\tIN\tA\t192.0.2.1"},
		{"example.test. 300 IN MX 10 mx.example.test.", "example.test.\t\t300\tIN\tMX\t10 mx.example.test."},
		{"a-rather-long-name.example.test. 5 IN TXT \"x y\"", "a-rather-long-name.example.test. 5 IN\tTXT\t\"x y\""},
		{`svc.example.test. 60 IN HTTPS 1 . alpn="h2,h3" ipv4hint=192.0.2.1 port=8443 no-default-alpn`,
			"svc.example.test.\t60\tIN\tHTTPS\t1 . alpn=\"h2,h3\" ipv4hint=192.0.2.1 port=8443 no-default-alpn"},
		{"x.example.test. 1 IN TYPE65000 \\# 2 abcd", "x.example.test.\t\t1\tIN\tTYPE65000 \\# 2 abcd"},
	} {
		rr, err := dns.NewRR(tc.rr)
		if err != nil {
			t.Fatal(err)
		}
		if got := rrText(rr); got != tc.text {
			t.Errorf("%s:\n got %q\nwant %q", tc.rr, got, tc.text)
		}
	}
	rr, _ := dns.NewRR(`svc.example.test. 60 IN HTTPS 1 . alpn="h2,h3" ipv4hint=192.0.2.1,192.0.2.2 port=8443 ech=AAA= mandatory=alpn`)
	f := rdataFields(rr)
	params := f["params"].(map[string]any)
	if f["priority"] != uint16(1) || f["target"] != "." || f["mode"] != "service" ||
		fmt.Sprint(params["alpn"]) != "[h2 h3]" || params["port"] != uint16(8443) ||
		fmt.Sprint(params["ipv4hint"]) != "[192.0.2.1 192.0.2.2]" || params["ech"] != "AAA=" || fmt.Sprint(params["mandatory"]) != "[alpn]" {
		t.Errorf("HTTPS fields %v", f)
	}
	rr, _ = dns.NewRR("example.test. 300 IN SOA ns.example.test. admin.example.test. 7 3600 600 86400 60")
	if f := rdataFields(rr); f["ns"] != "ns.example.test." || f["serial"] != uint32(7) || f["minttl"] != uint32(60) {
		t.Errorf("SOA fields %v", f)
	}
	rr, _ = dns.NewRR("example.test. 300 IN NSEC next.example.test. A MX RRSIG")
	if f := rdataFields(rr); fmt.Sprint(f["type_bit_map"]) != "[A MX RRSIG]" || f["next_domain"] != "next.example.test." {
		t.Errorf("NSEC fields %v", f)
	}
}

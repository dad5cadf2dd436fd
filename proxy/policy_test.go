package proxy

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseTargetHost(t *testing.T) {
	testCases := []struct {
		in, key, urlHost string // key "" = must fail
	}{
		{"t.example", "t.example:443", "t.example"},
		{"T.Example:443", "t.example:443", "t.example"},
		{"t.example:8443", "t.example:8443", "t.example:8443"},
		{"127.0.0.1:8443", "127.0.0.1:8443", "127.0.0.1:8443"},
		{"[::1]", "[::1]:443", "[::1]"},
		{"[2001:DB8::1]:853", "[2001:db8::1]:853", "[2001:db8::1]:853"},
		{"a-b.c1.example", "a-b.c1.example:443", "a-b.c1.example"},
		{"", "", ""},
		{"t.example.", "", ""},
		{"t..example", "", ""},
		{"-t.example", "", ""},
		{"t-.example", "", ""},
		{"t_x.example", "", ""},
		{"t.example:", "", ""},
		{"t.example:0", "", ""},
		{"t.example:08443", "", ""},
		{"t.example:65536", "", ""},
		{"t.example:443:443", "", ""},
		{"u@t.example", "", ""},
		{"t.example/x", "", ""},
		{"t.example#x", "", ""},
		{"t.example x", "", ""},
		{"127.1", "", ""},
		{"0x7f.0.0.1", "", ""},
		{"0177.0.0.1", "", ""},
		{"2130706433", "", ""},
		{"1.2.3.4.5", "", ""},
		{"::1", "", ""},
		{"[::1", "", ""},
		{"[::1]x", "", ""},
		{"[::1]:", "", ""},
		{"[fe80::1%lo]", "", ""},
		{"[127.0.0.1]", "", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example:443", "xn--bcher-kva.example"},
		{"bücher.example", "", ""},
	}
	for _, tc := range testCases {
		got, err := parseTargetHost(tc.in)
		if tc.key == "" {
			if err == nil {
				t.Errorf("parseTargetHost(%q) = %q, want an error", tc.in, got.key)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTargetHost(%q): %v", tc.in, err)
			continue
		}
		if got.key != tc.key || got.urlHost != tc.urlHost {
			t.Errorf("parseTargetHost(%q) = %q, %q; want %q, %q", tc.in, got.key, got.urlHost, tc.key, tc.urlHost)
		}
	}
}

func TestCheckTargetPath(t *testing.T) {
	for _, p := range []string{"/dns-query", "/", "/a/b-c_d.e~f", "/.well-known/odohconfigs", "/a+b"} {
		if err := checkTargetPath(p); err != nil {
			t.Errorf("checkTargetPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "dns-query", "//x", "/a?b", "/a#b", `/a\b`, "/a%2F", "/a b", "/a\nb", "/a\x7f", "/..", "/a/../b", "/./a", "/ä", "/" + string(make([]byte, MaxTargetPathLen))} {
		if err := checkTargetPath(p); err == nil {
			t.Errorf("checkTargetPath(%q) accepted", p)
		}
	}
}

func TestIsSpecial(t *testing.T) {
	special := []string{
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "127.0.0.1", "169.254.169.254", "172.16.0.1",
		"192.0.0.8", "192.0.2.1", "192.168.1.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "224.0.0.1",
		"240.0.0.1", "255.255.255.255", "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b:1::1", "100::1", "2001::1", "2001:db8::1", "2002:7f00:1::", "fc00::1",
		"fd00::1", "fe80::1", "fec0::1", "ff02::1", "3fff::1",
	}
	public := []string{"1.1.1.1", "8.8.8.8", "100.128.0.1", "2606:4700:4700::1111", "2a00:1450::1", "::ffff:1.1.1.1"}
	for _, s := range special {
		if !isSpecial(netip.MustParseAddr(s)) {
			t.Errorf("%s not special", s)
		}
	}
	for _, s := range public {
		if isSpecial(netip.MustParseAddr(s)) {
			t.Errorf("%s special", s)
		}
	}
}

func TestCompilePolicy(t *testing.T) {
	if _, err := compilePolicy(Policy{}); err == nil {
		t.Error("empty allowlist accepted")
	}
	if _, err := compilePolicy(Policy{Allow: []string{"a@b"}}); err == nil {
		t.Error("bad entry accepted")
	}
	p, err := compilePolicy(Policy{Allow: []string{"T.example", "127.0.0.1:8443", "[::1]:853"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"t.example", true}, {"t.example:443", true}, {"t.example:8443", false},
		{"127.0.0.1:8443", true}, {"127.0.0.1", false}, {"[::1]:853", true}, {"[0:0::1]:853", true},
	} {
		tg, err := parseTargetHost(tc.host)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.check(tg) == nil; got != tc.ok {
			t.Errorf("check(%q) allowed = %v, want %v", tc.host, got, tc.ok)
		}
	}
	if !p.allowsAddr("127.0.0.1:8443", netip.MustParseAddr("127.0.0.1")) {
		t.Error("IP-literal entry refused its own address")
	}
	if p.allowsAddr("t.example:443", netip.MustParseAddr("127.0.0.1")) {
		t.Error("name allowed to resolve to loopback")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 2, limiterShards*4) // 4 clients per shard
	now := time.Unix(1000, 0)
	a := clientKey("192.0.2.1:1234")
	for i, want := range []bool{true, true, false} {
		if got := l.allow(a, now); got != want {
			t.Fatalf("request %d: allowed = %v, want %v (burst 2)", i, got, want)
		}
	}
	if !l.allow(a, now.Add(100*time.Millisecond)) {
		t.Error("no refill after 100ms at 10/s")
	}
	// IPv6 clients share a bucket per /64.
	b1, b2 := clientKey("[2001:db8:1:2::1]:1"), clientKey("[2001:db8:1:2:ffff::9]:2")
	if b1 != b2 || b1 == clientKey("[2001:db8:1:3::1]:1") {
		t.Errorf("IPv6 keys %v %v", b1, b2)
	}
	if clientKey("[::ffff:192.0.2.1]:5") != a {
		t.Error("mapped IPv4 not keyed as IPv4")
	}
	// Memory stays bounded however many clients come.
	for i := range 10000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if n := l.size(); n > limiterShards*4 {
		t.Errorf("limiter tracks %d clients, bound %d", n, limiterShards*4)
	}
}

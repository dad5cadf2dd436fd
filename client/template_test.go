package client_test

import (
	"testing"

	"github.com/odohd/odoh/client"
)

func TestProxyTemplate(t *testing.T) {
	testCases := []struct {
		name, tmpl string
		ok         bool
		want       string // expansion for ("dnstarget.example", "/dns-query")
	}{
		{"rfc query form", "https://dnsproxy.example/dns-query{?targethost,targetpath}", true,
			"https://dnsproxy.example/dns-query?targethost=dnstarget.example&targetpath=%2Fdns-query"},
		{"reversed order", "https://p.example/q{?targetpath,targethost}", true,
			"https://p.example/q?targetpath=%2Fdns-query&targethost=dnstarget.example"},
		{"path form", "https://p.example/proxy/{targethost}/{targetpath}", true,
			"https://p.example/proxy/dnstarget.example/%2Fdns-query"},
		{"path operator", "https://p.example/proxy{/targethost,targetpath}", true,
			"https://p.example/proxy/dnstarget.example/%2Fdns-query"},
		{"continuation", "https://p.example/q?x=1{&targethost,targetpath}", true,
			"https://p.example/q?x=1&targethost=dnstarget.example&targetpath=%2Fdns-query"},
		{"plain url", "https://p.example/proxy", true,
			"https://p.example/proxy?targethost=dnstarget.example&targetpath=%2Fdns-query"},
		{"plain url with port", "https://p.example:8443/dns-query", true,
			"https://p.example:8443/dns-query?targethost=dnstarget.example&targetpath=%2Fdns-query"},
		{"http template", "http://p.example/dns-query{?targethost,targetpath}", false, ""},
		{"http plain", "http://p.example/dns-query", false, ""},
		{"missing targetpath", "https://p.example/dns-query{?targethost}", false, ""},
		{"missing both", "https://p.example/dns-query{?x}", false, ""},
		{"duplicate", "https://p.example/{targethost}{?targethost,targetpath}", false, ""},
		{"extra variable", "https://p.example/dns-query{?targethost,targetpath,dns}", false, ""},
		{"in authority", "https://{targethost}/dns-query{?targetpath}", false, ""},
		{"in port", "https://p.example:{targethost}/{targetpath}", false, ""},
		{"fragment op", "https://p.example/q{#targethost,targetpath}", false, ""},
		{"fragment", "https://p.example/q{?targethost,targetpath}#x", false, ""},
		{"unterminated", "https://p.example/q{?targethost,targetpath", false, ""},
		{"stray brace", "https://p.example/q}{?targethost,targetpath}", false, ""},
		{"prefix modifier", "https://p.example/q{?targethost:3,targetpath}", false, ""},
		{"userinfo", "https://u@p.example/q{?targethost,targetpath}", false, ""},
		{"no scheme", "p.example/q{?targethost,targetpath}", false, ""},
		{"own targethost in query", "https://p.example/q?targethost=evil.example{&targethost,targetpath}", false, ""},
		{"own targetpath in template", "https://p.example/{targethost}?targetpath=%2Fx", false, ""},
		{"literal ? before {?}", "https://p.example/q?{?targethost,targetpath}", false, ""},
		{"{&} without a query", "https://p.example/q{&targethost,targetpath}", false, ""},
		{"plain url with own targethost", "https://p.example/proxy?targethost=evil.example", false, ""},
		{"plain url with other params", "https://p.example/proxy?key=1", true,
			"https://p.example/proxy?key=1&targethost=dnstarget.example&targetpath=%2Fdns-query"},
		{"reserved expansion keeps slashes", "https://p.example/proxy/{targethost}{+targetpath}", true,
			"https://p.example/proxy/dnstarget.example/dns-query"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := client.ParseProxyTemplate(tc.tmpl)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				return
			}
			if got := p.Expand("dnstarget.example", "/dns-query"); got != tc.want {
				t.Errorf("expand:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestProxyTemplateEncodesPort(t *testing.T) {
	p, err := client.ParseProxyTemplate("https://p.example/{targethost}/{targetpath}")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Expand("t.example:8443", "/a b/c"), "https://p.example/t.example%3A8443/%2Fa%20b%2Fc"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	if got := p.Origin(); got != "https://p.example" {
		t.Errorf("origin %s", got)
	}
}

// A target path holding '?', '#', '&' or '%' cannot escape a reserved
// expansion into the proxy URL's query or fragment.
func TestProxyTemplateReservedExpansionIsContained(t *testing.T) {
	p, err := client.ParseProxyTemplate("https://p.example/{targethost}{+targetpath}")
	if err != nil {
		t.Fatal(err)
	}
	got := p.Expand("t.example", "/x?targethost=evil.example#&%41")
	if want := "https://p.example/t.example/x%3Ftargethost%3Devil.example%23%26%2541"; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if got := p.Origin(); got != "https://p.example" {
		t.Errorf("origin %s", got)
	}
}

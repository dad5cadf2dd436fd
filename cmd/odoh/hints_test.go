package main

import (
	"strings"
	"testing"

	"github.com/odohd/odoh/client"
)

// Each Proxy-Status the proxy answers, and each status a target relays
// or a server answers itself, gets a line that names who failed and what
// to do; the words a user acts on are asserted.
func TestHTTPHints(t *testing.T) {
	for _, tc := range []struct {
		status     int
		url, ps    string
		cause, fix string
	}{
		{403, "CONNECT t:443", `odoh-proxy; error=http_request_denied; details="target not allowed"`,
			"the proxy does not forward to this target", "odoh-proxy -allow-target HOST[:PORT]"},
		{429, "https://p/dns-query", "odoh-proxy; error=http_request_denied", "the proxy is limiting requests", "wait a moment and retry"},
		{403, "https://p/dns-query", "odoh-proxy; error=destination_ip_prohibited", "loopback, private or otherwise special", "-allow-special-addrs"},
		{502, "https://p/dns-query", "odoh-proxy; error=dns_error", "the proxy could not resolve the target's name", "check the host in -target"},
		{504, "https://p/dns-query", "odoh-proxy; error=dns_timeout", "the proxy could not resolve the target's name", "its operator"},
		{502, "https://p/dns-query", "odoh-proxy; error=connection_refused", "nothing accepts connections at the target's address", "check the port in -target"},
		{504, "https://p/dns-query", "odoh-proxy; error=connection_timeout", "could not connect to the target in time", "-target-http3"},
		{502, "https://p/dns-query", "odoh-proxy; error=tls_certificate_error", "the proxy does not trust the target's certificate", "odoh-proxy -ca FILE"},
		{502, "https://p/dns-query", "odoh-proxy; error=tls_protocol_error", "TLS with the target failed", "-target names an HTTPS server"},
		{504, "https://p/dns-query", "odoh-proxy; error=http_response_timeout", "did not answer within the proxy's response timeout", "try another target"},
		{502, "https://p/dns-query", "odoh-proxy; error=http_protocol_error", "the target's answer was not ODoH", "usually /dns-query"},
		{400, "https://p/dns-query", "odoh-proxy; error=http_request_error", "refused the request as malformed", "the proxy's URI template"},
		{502, "https://p/dns-query", "odoh-proxy; error=http_response_body_size", "larger than the proxy relays", "misbehaving"},
		{404, "https://p/dns-query", "odoh-proxy; received-status=404", "the target serves no ODoH at that path", "usually /dns-query"},
		{415, "https://p/dns-query", "odoh-proxy; received-status=415", "the target refused the query as malformed", "rather than a DoH server"},
		{401, "https://p/dns-query", "odoh-proxy; received-status=401", "the target refuses its own published key", "tell its operator"},
		{404, "https://p/", "", "no ODoH endpoint at https://p/", "https://HOST/dns-query{?targethost,targetpath}"},
		{429, "https://p/dns-query", "", "the server is limiting requests", "wait a moment and retry"},
	} {
		he := &client.HTTPError{URL: tc.url, StatusCode: tc.status, ProxyStatus: tc.ps}
		got := strings.Join(hints(he), "\n")
		if !strings.Contains(got, tc.cause) || !strings.Contains(got, tc.fix) {
			t.Errorf("%d %q: hint %q, want %q and %q", tc.status, tc.ps, got, tc.cause, tc.fix)
		}
	}
}

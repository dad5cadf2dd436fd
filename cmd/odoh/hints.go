package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/quic-go/quic-go"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/odoh"
)

// hints say what to do about an error: the flag that fixes it, or who
// can. Each error gets at most a line or two; none when the message says
// it all.
func hints(err error) []string {
	var he *client.HTTPError
	switch {
	case errors.Is(err, client.ErrNoProxy):
		return []string{"give -proxy URL (or @URL), or -direct to query the target without one (the target then sees your address)"}
	case errors.Is(err, client.ErrSameOperator):
		return []string{"use a proxy and a target run by different operators, or -allow-same-operator to test on one host (with no privacy)"}
	case errors.Is(err, client.ErrNoTunnel):
		return []string{"this proxy cannot carry a configs fetch that it cannot forge: use -configs-from-target " +
			"(the target then sees your address at each fetch), -config or -config-file, " +
			"or -configs-via-relay with -pin HOST=key:HEX"}
	case errors.Is(err, client.ErrInconsistentConfigs):
		return []string{"the target may be giving you a key of its own, or the proxy's relay lies: try another proxy or target"}
	case errors.Is(err, client.ErrPinMismatch):
		return []string{"the server is not the one pinned (-pin, or the stamp's hashes): it changed its certificate or key, " +
			"or something else answers in its name; update the pin only if its operator announced the change"}
	case errors.As(err, &he):
		return httpHints(he)
	}
	return transportHints(err)
}

// httpHints explain an HTTP status from a proxy or a target: the proxy's
// Proxy-Status says which of them failed, and how.
func httpHints(he *client.HTTPError) []string {
	var ps odoh.ProxyStatus
	if members, err := odoh.ParseProxyStatus(he.ProxyStatus); err == nil && len(members) > 0 {
		ps = members[len(members)-1] // the member of the proxy we talked to
	}
	connect := strings.HasPrefix(he.URL, "CONNECT ")
	switch ps.Error {
	case odoh.ProxyHTTPRequestDenied:
		if he.StatusCode == http.StatusTooManyRequests || he.StatusCode == http.StatusServiceUnavailable {
			return []string{"the proxy is limiting requests (its rate or concurrency caps): wait a moment and retry, or use another proxy"}
		}
		return []string{"the proxy does not forward to this target: use a proxy that allows it, " +
			"or ask the proxy's operator to allow it (odoh-proxy -allow-target HOST[:PORT])"}
	case odoh.ProxyDestinationIPProhibited:
		return []string{"the proxy refuses the target's address, which is loopback, private or otherwise special: " +
			"its operator allows one such target by naming its IP address (odoh-proxy -allow-target 127.0.0.1:PORT), " +
			"or all with -allow-special-addrs"}
	case odoh.ProxyDNSError, odoh.ProxyDNSTimeout:
		return []string{"the proxy could not resolve the target's name: check the host in -target; " +
			"if it is right, the proxy's resolver is failing: tell its operator"}
	case odoh.ProxyConnectionRefused:
		return []string{"nothing accepts connections at the target's address: check the port in -target, and that the target runs"}
	case odoh.ProxyConnectionTimeout:
		return []string{"the proxy could not connect to the target in time: the target is down or unreachable from the proxy " +
			"(a proxy talking HTTP/3 to it, -target-http3, needs the target to serve HTTP/3 on UDP)"}
	case odoh.ProxyTLSCertificateError:
		return []string{"the proxy does not trust the target's certificate: the target needs a certificate valid for its name, " +
			"or the proxy's operator must trust its CA (odoh-proxy -ca FILE)"}
	case odoh.ProxyTLSProtocolError:
		return []string{"TLS with the target failed: check that -target names an HTTPS server and its port"}
	case odoh.ProxyHTTPResponseTimeout:
		return []string{"the target took the query but did not answer within the proxy's response timeout: " +
			"the target or its resolver is down or overloaded; try another target"}
	case odoh.ProxyHTTPProtocolError:
		return []string{"the target's answer was not ODoH: check that -target's path is the target's ODoH endpoint (usually /dns-query)"}
	case odoh.ProxyHTTPRequestError:
		return []string{"the proxy refused the request as malformed: check -proxy, which should be the proxy's URI template"}
	case odoh.ProxyHTTPResponseBodySize:
		return []string{"the target's answer was larger than the proxy relays: the target is misbehaving"}
	case "":
	default:
		return []string{"the proxy could not reach the target (" + string(ps.Error) + "): the target may be down"}
	}
	if ps.ReceivedStatus != 0 { // the target's own status, relayed
		switch ps.ReceivedStatus {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return []string{"the target serves no ODoH at that path: check the path in -target (usually /dns-query)"}
		case http.StatusUnsupportedMediaType, http.StatusBadRequest:
			return []string{"the target refused the query as malformed: is -target an ODoH target rather than a DoH server?"}
		case http.StatusUnauthorized:
			return []string{"the target refuses its own published key: its replicas may not share a seed; tell its operator"}
		}
		return nil
	}
	if connect {
		return nil
	}
	// No Proxy-Status: the server we talked to answered itself.
	switch he.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return []string{"no ODoH endpoint at " + he.URL + ": give the proxy's URI template, such as " +
			"https://HOST/dns-query{?targethost,targetpath} (or, with -direct, the target's URL, usually https://HOST/dns-query)"}
	case http.StatusUnauthorized:
		return []string{"the target refuses its own published key: its replicas may not share a seed; tell its operator"}
	case http.StatusTooManyRequests:
		return []string{"the server is limiting requests: wait a moment and retry"}
	}
	return nil
}

// transportHints explain failures to reach the proxy (or, with -direct,
// the target) at all.
func transportHints(err error) []string {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var cve *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	var idle *quic.IdleTimeoutError
	var hto *quic.HandshakeTimeoutError
	switch {
	case errors.As(err, &unknown), errors.As(err, &cve) && errors.As(cve.Err, &unknown):
		return []string{"the server's certificate is not signed by a CA you trust: if it uses a private CA, give its certificate with -ca FILE"}
	case errors.As(err, &hostErr):
		return []string{"the server's certificate is for another name: check the host name in -proxy or -target"}
	case errors.As(err, &dnsErr):
		return []string{"could not resolve " + dnsErr.Name + ": check its spelling, or dial an address without DNS with -resolve HOST:443:ADDR"}
	case errors.Is(err, syscall.ECONNREFUSED):
		// The refused address may be the proxy's, or the target's when
		// configs come from it (-configs-from-target, -direct): name it.
		var op *net.OpError
		if errors.As(err, &op) && op.Addr != nil {
			return []string{"nothing accepts connections at " + op.Addr.String() +
				": check the host and port in -proxy or -target that lead there, and that the server runs"}
		}
		return []string{"nothing accepts connections there: check the host and port in -proxy (or, with -direct, -target)"}
	case errors.As(err, &idle), errors.As(err, &hto):
		return []string{"no answer over QUIC: the server may not serve HTTP/3 (drop -http3), or UDP is blocked on the way"}
	case errors.Is(err, context.DeadlineExceeded):
		return []string{"nothing answered within -timeout: the proxy or the target is down or unreachable; " +
			"-log-level debug shows each attempt"}
	}
	return nil
}

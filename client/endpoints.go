package client

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/odohd/odoh/odoh"
)

// parseTarget parses a target URL or target stamp; the stamp is nil for
// a URL.
func parseTarget(s string) (*target, *Stamp, error) {
	var st *Stamp
	if strings.HasPrefix(s, stampPrefix) {
		parsed, err := ParseStamp(s)
		if err != nil {
			return nil, nil, err
		}
		if parsed.Proto != StampODoHTarget {
			return nil, nil, fmt.Errorf("target %q is an ODoH relay stamp: give it as the proxy, and a target stamp (sdns://BQ…) or URL as the target", s)
		}
		st, s = &parsed, parsed.URL()
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("target %q is not an https URL with a host and no query: want https://HOST[:PORT]/PATH, such as https://%s/dns-query", s, exampleHost(s))
	}
	if u.Path == "" {
		u.Path = odoh.QueryPath
	}
	return &target{url: u, str: u.String()}, st, nil
}

// hashes returns a stamp's certificate hashes (none for a nil stamp).
func (s *Stamp) hashes() [][]byte {
	if s == nil {
		return nil
	}
	return s.Hashes
}

// parseProxy parses a proxy template, URL or relay stamp; the stamp is nil
// for the first two.
func parseProxy(s string) (*ProxyTemplate, *Stamp, error) {
	if !strings.HasPrefix(s, stampPrefix) {
		p, err := ParseProxyTemplate(s)
		return p, nil, err
	}
	st, err := ParseStamp(s)
	if err != nil {
		return nil, nil, err
	}
	if st.Proto != StampODoHRelay {
		return nil, nil, fmt.Errorf("proxy %q is an ODoH target stamp: give it as the target, and a relay stamp (sdns://hQ…) or URL as the proxy", s)
	}
	p, err := ParseProxyTemplate(st.URL())
	return p, &st, err
}

// addStamp records a relay stamp's address and certificate pins.
func (c *Client) addStamp(st *Stamp) error {
	if st == nil {
		return nil
	}
	u, err := url.Parse(st.URL())
	if err != nil {
		return fmt.Errorf("relay stamp %s: %w", st.URL(), err)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "443"
	}
	if st.Addr != "" {
		addr, err := stampAddr(st.Addr, port)
		if err != nil {
			return fmt.Errorf("relay stamp %s: %w", st.URL(), err)
		}
		c.resolve[net.JoinHostPort(host, port)] = addr
	}
	for _, h := range st.Hashes {
		if err := c.pins.add(Pin{Host: host, Cert: h}); err != nil {
			return fmt.Errorf("relay stamp %s: %w", st.URL(), err)
		}
	}
	return nil
}

// stampAddr turns a stamp's address (IP, IP:port, [IPv6] or [IPv6]:port)
// into ip:port, with port when the stamp gives none.
func stampAddr(a, port string) (string, error) {
	ip := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		ip, port = h, p
	}
	ip = strings.Trim(ip, "[]")
	if _, err := netip.ParseAddr(ip); err != nil {
		return "", fmt.Errorf("address %q is not an IP address", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: bad port", a)
	}
	return net.JoinHostPort(ip, port), nil
}

// exampleHost guesses the host:port in a malformed URL, for the example
// of the error that refuses it ("odoh.example" when it cannot).
func exampleHost(s string) string {
	s = s[strings.Index(s, "://")+1:]
	s = strings.TrimLeft(s, "/")
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" || strings.ContainsAny(s, " {}") {
		return "odoh.example"
	}
	return s
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// registrableDomain returns what identifies an operator: the registrable
// domain (eTLD+1 by the public suffix list) of a host name, or the address
// itself for an IP literal. Names without a registrable part (localhost, a
// bare suffix) are returned as they are.
func registrableDomain(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().WithZone("").String()
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(h); err == nil {
		return d
	}
	return h
}

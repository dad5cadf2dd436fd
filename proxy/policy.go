package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/odohd/odoh/odoh"
)

// DefaultPort is the only port a target may use unless the allowlist entry
// (or Policy.OpenPorts) names another.
const DefaultPort = 443

// MaxTargetPathLen bounds the decoded targetpath.
const MaxTargetPathLen = 1024

// Policy says which targets the proxy forwards to.
//
// Entries in Allow are "host" or "host:port": a DNS name, an IPv4 literal or
// a bracketed IPv6 literal, with port 443 when none is given. Names are
// case-insensitive. A target matches only an entry with the same host and
// the same port.
//
// Whatever the entry, the dialer resolves names itself and refuses special
// addresses (loopback, private, link-local, CGNAT, multicast, documentation,
// NAT64, ...) after resolution, so a name cannot be pointed at an internal
// service. An entry that is itself an IP literal allows exactly that
// address, special or not: it is how an operator deliberately names an
// internal target.
type Policy struct {
	// Allow lists the permitted targets as host[:port].
	Allow []string
	// AllowOpen forwards to any target that passes the grammar, the port
	// rule and the address checks: an open relay. Off unless asked for.
	AllowOpen bool
	// OpenPorts are the ports AllowOpen permits; empty means 443 only.
	OpenPorts []uint16
	// AllowSpecialAddrs lets targets that are names resolve to special
	// addresses (for a private deployment whose targets live on internal
	// networks). Off by default.
	AllowSpecialAddrs bool
}

// Check reports what New would refuse in p: an entry outside the
// HOST[:PORT] grammar, say, so that a program can refuse its flags before
// it starts.
func (p Policy) Check() error {
	_, err := compilePolicy(p)
	return err
}

// target is a parsed, canonical targethost.
type target struct {
	host string     // lower-case name, or the address's canonical text
	addr netip.Addr // valid for IP literals
	port uint16
	key  string // canonical "host:port" (IPv6 bracketed); the allowlist key
	// urlHost is the authority for url.URL: key without ":443".
	urlHost string
	// queryURL is https://urlHost/dns-query, precomputed for allowlist
	// entries (nil otherwise); requests share it read-only.
	queryURL *url.URL
}

// lookup returns the parsed target for a host spelled like an allowlist
// entry, or parses it.
func (c *compiledPolicy) lookup(host string) (*target, error) {
	if t := c.known[host]; t != nil {
		return t, nil
	}
	return parseTargetHost(host)
}

// compiledPolicy is an immutable, checked Policy.
type compiledPolicy struct {
	allow map[string]bool // canonical key → allowed
	// known maps the spellings of allowlist entries (as written, and
	// canonical with and without the default port) to their parsed
	// targets, so the hot path skips parsing for them. Shared, read-only.
	known     map[string]*target
	literals  map[string]bool // keys whose host is an IP literal
	open      bool
	openPorts map[uint16]bool
	special   bool
}

func compilePolicy(p Policy) (*compiledPolicy, error) {
	c := &compiledPolicy{
		allow:     make(map[string]bool, len(p.Allow)),
		known:     make(map[string]*target, 3*len(p.Allow)),
		literals:  make(map[string]bool),
		open:      p.AllowOpen,
		openPorts: map[uint16]bool{},
		special:   p.AllowSpecialAddrs,
	}
	if len(p.Allow) == 0 && !p.AllowOpen {
		return nil, errors.New("proxy: empty target allowlist (set Allow, or AllowOpen for an open relay)")
	}
	for _, e := range p.Allow {
		if strings.Contains(e, "://") || strings.Contains(e, "/") {
			return nil, fmt.Errorf("proxy: allowlist entry %q is a URL: give the target's HOST or HOST:PORT alone, such as %s", e, allowExample(e))
		}
		t, err := parseTargetHost(e)
		if err != nil {
			return nil, fmt.Errorf("proxy: allowlist entry %q: %w: want HOST or HOST:PORT, such as odoh.example or 192.0.2.1:8443", e, err)
		}
		c.allow[t.key] = true
		t.queryURL = &url.URL{Scheme: "https", Host: t.urlHost, Path: odoh.QueryPath}
		c.known[e], c.known[t.key], c.known[t.urlHost] = t, t, t
		if t.addr.IsValid() {
			c.literals[t.key] = true
		}
	}
	for _, port := range p.OpenPorts {
		if port == 0 {
			return nil, errors.New("proxy: open port 0")
		}
		c.openPorts[port] = true
	}
	if len(c.openPorts) == 0 {
		c.openPorts[DefaultPort] = true
	}
	return c, nil
}

// allowExample is the HOST[:PORT] of a URL given as an allowlist entry,
// for the error that refuses it.
func allowExample(e string) string {
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		return u.Host
	}
	return "odoh.example"
}

// denial is why a policy refused a target.
type denial struct {
	kind    odoh.ProxyError
	details string
}

// check applies the policy to a parsed target before any network activity.
func (c *compiledPolicy) check(t *target) *denial {
	if c.allow[t.key] {
		return nil
	}
	if !c.open {
		return &denial{odoh.ProxyHTTPRequestDenied, "target not allowed"}
	}
	if !c.openPorts[t.port] {
		return &denial{odoh.ProxyHTTPRequestDenied, "port not allowed"}
	}
	if t.addr.IsValid() && isSpecial(t.addr) && !c.special {
		return &denial{odoh.ProxyDestinationIPProhibited, "destination address not allowed"}
	}
	return nil
}

// allowsAddr reports whether a connection for hostKey (canonical
// "host:port") may go to ip.
func (c *compiledPolicy) allowsAddr(hostKey string, ip netip.Addr) bool {
	if !isSpecial(ip) {
		return true
	}
	// An IP-literal entry names exactly the address being dialled.
	return c.literals[hostKey] || c.special
}

// parseTargetHost checks a decoded targethost against a strict
// host[:port] grammar and returns its canonical form. IPv4 literals must be
// dotted quads (no "127.1", octal or hex forms, which resolvers and URL
// parsers disagree on); IPv6 literals must be bracketed and zone-free.
func parseTargetHost(s string) (*target, error) {
	if s == "" {
		return nil, errors.New("empty host")
	}
	if len(s) > 261 { // 253-byte name + ":65535" + slack
		return nil, errors.New("host too long")
	}
	host, portStr := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, errors.New("unterminated IPv6 literal")
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return nil, errors.New("junk after IPv6 literal")
			}
			portStr = rest[1:]
			if portStr == "" {
				return nil, errors.New("empty port")
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, errors.New("bad IPv6 literal")
		}
		return finishTarget(a.String(), a, portStr)
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, portStr = s[:i], s[i+1:]
		if portStr == "" {
			return nil, errors.New("empty port")
		}
	}
	if err := checkName(host); err != nil {
		return nil, err
	}
	// A name whose last label is numeric must be a dotted-quad IPv4
	// literal; anything else numeric ("127.1", "0x7f.0.0.1",
	// "2130706433", "127.000.0.1") is refused.
	last := host[strings.LastIndexByte(host, '.')+1:]
	if allDigits(last) {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return nil, errors.New("bad IPv4 literal")
		}
		return finishTarget(a.String(), a, portStr)
	}
	return finishTarget(strings.ToLower(host), netip.Addr{}, portStr)
}

func finishTarget(host string, a netip.Addr, portStr string) (*target, error) {
	port := uint16(DefaultPort)
	if portStr != "" {
		if !allDigits(portStr) || portStr[0] == '0' || len(portStr) > 5 {
			return nil, errors.New("bad port")
		}
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New("bad port")
		}
		port = uint16(n)
	}
	t := &target{host: host, addr: a, port: port}
	bracketed := host
	if a.Is6() {
		bracketed = "[" + host + "]"
	}
	t.key = bracketed + ":" + strconv.Itoa(int(port))
	t.urlHost = bracketed
	if port != DefaultPort {
		t.urlHost = t.key
	}
	return t, nil
}

// checkName accepts LDH names: labels of letters, digits and inner hyphens,
// 1..63 bytes each, 253 bytes in all, no trailing dot.
func checkName(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("bad host name length")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("bad host name label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("bad host name label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("bad character %q in host", c)
			}
		}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkTargetPath checks a decoded targetpath: absolute, ASCII, no query,
// fragment, backslash, percent sign, control characters or dot segments,
// and not "//" (which some servers read as an authority).
func checkTargetPath(p string) error {
	if p == "" || p[0] != '/' {
		return errors.New("path not absolute")
	}
	if len(p) > MaxTargetPathLen {
		return errors.New("path too long")
	}
	if strings.HasPrefix(p, "//") {
		return errors.New("path starts with //")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '\\' || c == '%' {
			return fmt.Errorf("bad character %q in path", c)
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return errors.New("dot segment in path")
		}
	}
	return nil
}

// Special-purpose ranges refused after resolution, beyond what netip's
// predicates cover (IANA special-purpose registries, RFC 6890 and later).
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo, ORCHID, ...)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4 address
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// isSpecial reports whether a is an address a public relay must not
// connect to on a name's say-so. IPv4-mapped IPv6 addresses are judged as
// the IPv4 address they carry.
func isSpecial(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() {
		return true
	}
	if a.Zone() != "" {
		return true
	}
	for _, p := range specialPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

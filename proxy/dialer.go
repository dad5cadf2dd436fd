package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/odohd/odoh/internal/writebatch"
	"github.com/odohd/odoh/odoh"
	"github.com/quic-go/quic-go"
)

// dialer opens connections to targets. It resolves names itself (with the
// configured resolver), checks every resolved address against the policy in
// force at dial time, and connects only to the addresses it checked, so DNS
// rebinding cannot slip a special address past the check.
type dialer struct {
	policy         *atomic.Pointer[compiledPolicy]
	resolver       *net.Resolver
	ownResolver    bool // Config.Resolver given: its Dial picks the server
	connectTimeout time.Duration
	tlsTimeout     time.Duration
	tlsConfig      *tls.Config // RootCAs, MinVersion; ServerName set per dial
	quic           *quic.Transport
}

// resolve checks addr ("host:port", as the transports pass it) and returns
// the addresses to connect to.
func (d *dialer) resolve(ctx context.Context, addr string) (*target, []netip.Addr, error) {
	t, err := parseTargetHost(addr)
	if err != nil {
		// The handler only builds URLs from parsed targets; this is a bug
		// or a caller outside the handler.
		return nil, nil, &dialError{odoh.ProxyHTTPRequestDenied, fmt.Errorf("refusing address %q: %w", addr, err)}
	}
	pol := d.policy.Load()
	if den := pol.check(t); den != nil {
		return nil, nil, &dialError{den.kind, errors.New(den.details)}
	}
	var ips []netip.Addr
	if t.addr.IsValid() {
		ips = []netip.Addr{t.addr}
	} else {
		lctx, cancel := context.WithTimeout(ctx, d.connectTimeout)
		ips, err = d.resolver.LookupNetIP(lctx, "ip", t.host)
		timedOut := lctx.Err() != nil
		cancel()
		if err != nil {
			kind := odoh.ProxyDNSError
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsTimeout || timedOut {
				kind = odoh.ProxyDNSTimeout
			}
			if dnsErr != nil && d.ownResolver {
				// net names the system's server (resolv.conf's), which a
				// Resolver with its own Dial never asked: leave it out.
				e := *dnsErr
				e.Server = ""
				err = &e
			}
			return nil, nil, &dialError{kind, err}
		}
		if len(ips) == 0 {
			return nil, nil, &dialError{odoh.ProxyDNSError, fmt.Errorf("no addresses for %q", t.host)}
		}
	}
	// One forbidden address refuses the name: an attacker controlling the
	// DNS answer could otherwise mix it with public ones.
	for i, ip := range ips {
		ip = ip.Unmap()
		ips[i] = ip
		if !pol.allowsAddr(t.key, ip) {
			return nil, nil, &dialError{odoh.ProxyDestinationIPProhibited, fmt.Errorf("address %s is not allowed", ip)}
		}
	}
	return t, ips, nil
}

// dialTCP returns a TCP connection to addr, checked as resolve checks it
// (the configs tunnel's dial).
func (d *dialer) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	t, ips, err := d.resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	return d.connect(ctx, t, ips)
}

// connect connects to t's port at the first of ips that answers.
func (d *dialer) connect(ctx context.Context, t *target, ips []netip.Addr) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.connectTimeout}
	var err error
	for _, ip := range ips {
		var conn net.Conn
		if conn, err = nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, t.port).String()); err == nil {
			return conn, nil
		}
	}
	kind := classifyNet(err)
	if kind == odoh.ProxyDestinationUnavailable || kind == odoh.ProxyConnectionTerminated {
		kind = odoh.ProxyConnectionRefused
	}
	return nil, &dialError{kind, err}
}

// dialTLS returns a TLS connection to addr; it is the http.Transport's
// DialTLSContext.
func (d *dialer) dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	t, ips, err := d.resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	conn, err := d.connect(ctx, t, ips)
	if err != nil {
		return nil, err
	}
	cfg := d.tlsConfig.Clone()
	cfg.ServerName = t.host
	// The HTTP/2 client flushes a request's HEADERS and DATA apart:
	// batched, they share one system call (see writebatch).
	bc := writebatch.New(conn)
	tc := tls.Client(bc, cfg)
	hctx, cancel := context.WithTimeout(ctx, d.tlsTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		bc.Close()
		kind := classifyNet(err)
		switch {
		case kind == odoh.ProxyTLSCertificateError:
		case hctx.Err() != nil:
			kind = odoh.ProxyConnectionTimeout
		default:
			kind = odoh.ProxyTLSProtocolError
		}
		return nil, &dialError{kind, err}
	}
	return tc, nil
}

// dialQUIC is the http3.Transport's Dial: the same checks, then a QUIC
// handshake over the proxy's one UDP socket.
func (d *dialer) dialQUIC(ctx context.Context, addr string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
	t, ips, err := d.resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, d.connectTimeout) // the handshake is the connection and TLS at once
	defer cancel()
	var conn *quic.Conn
	for _, ip := range ips {
		ua := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, t.port))
		conn, err = d.quic.DialEarly(hctx, ua, tlsCfg, cfg)
		if err == nil {
			return conn, nil
		}
	}
	kind := classifyNet(err)
	var idle *quic.IdleTimeoutError
	var hto *quic.HandshakeTimeoutError
	switch {
	case kind == odoh.ProxyTLSCertificateError:
	case errors.As(err, &idle), errors.As(err, &hto), hctx.Err() != nil:
		kind = odoh.ProxyConnectionTimeout
	case kind == odoh.ProxyDestinationUnavailable:
		kind = odoh.ProxyTLSProtocolError // a QUIC handshake failure is a TLS one
	}
	return nil, &dialError{kind, err}
}

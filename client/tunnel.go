package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/odohd/odoh/odoh"
)

// tunnelConfigs fetches t's configs in a TLS session of the client's own
// with the target, through proxy p's CONNECT tunnel (see ConfigViaTunnel).
func (c *Client) tunnelConfigs(ctx context.Context, p *endpoint, t *target) (*configSet, error) {
	tc, err := c.tunnelTLS(ctx, p, t.authority(), t.url.Hostname())
	if err != nil {
		return nil, err
	}
	defer tc.Close()
	u := url.URL{Scheme: "https", Host: t.url.Host, Path: odoh.ConfigsPath}
	set, err := getConfigs(ctx, &oneShot{conn: tc}, u.String(), " through the tunnel of "+p.tmpl.Origin())
	if err != nil {
		return nil, orCtx(ctx, err)
	}
	return set, nil
}

// tunnelTLS opens proxy p's CONNECT tunnel to authority and runs the
// client's own TLS session in it with the server name host, verified with
// the client's roots and pins; closing the connection (or ctx ending)
// closes the tunnel. Both the ODoH configs and the OHTTP keys are fetched
// this way.
func (c *Client) tunnelTLS(ctx context.Context, p *endpoint, authority, host string) (*tls.Conn, error) {
	conn, err := c.openTunnel(ctx, p, authority)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	tc := tls.Client(conn, &tls.Config{
		ServerName: host,
		RootCAs:    c.rootCAs,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// No ClientSessionCache: nothing resumed, so no ticket ties this
		// fetch to the next one.
		VerifyConnection: c.pins.verify,
	})
	// The handshake gets the dial timeout, as a direct connection's
	// does: a tunnel to something that never answers TLS fails the
	// fetch, with its cause, well before the query's deadline.
	hctx, cancel := context.WithTimeout(ctx, c.dialTO)
	err = tc.HandshakeContext(hctx)
	timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		stop()
		_ = conn.Close()
		if timedOut && ctx.Err() == nil {
			err = fmt.Errorf("no TLS answer within %v: is an HTTPS server listening at that address?", c.dialTO)
		}
		// The tunnel did not lead to the target (or the target's
		// certificate is not what it should be): the proxy's fault
		// unless shown otherwise, so that another proxy is tried.
		return nil, &relayError{fmt.Errorf("%w: TLS with target %s through the tunnel of %s: %w",
			ErrConfig, authority, p.tmpl.Origin(), orCtx(ctx, err))}
	}
	return tc, nil
}

// orCtx adds ctx's error to err when ctx ended: closing the tunnel on
// cancellation shows up as a closed pipe otherwise.
func orCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// openTunnel asks proxy p to CONNECT to authority (host:port) and returns
// the stream. It rides the client's pooled connection to the proxy: over
// HTTP/2 and HTTP/3 the tunnel is one more stream.
func (c *Client) openTunnel(ctx context.Context, p *endpoint, authority string) (net.Conn, error) {
	pr, pw := io.Pipe()
	req := (&http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Scheme: "https", Host: p.tmpl.Host()},
		Host:   authority,
		Header: http.Header{"User-Agent": hdrUA},
		Body:   pr,
	}).WithContext(ctx)
	resp, err := c.hc.Transport.RoundTrip(req)
	if err != nil {
		_ = pw.Close()
		return nil, &relayError{fmt.Errorf("opening a tunnel through %s: %w", p.tmpl.Origin(), err)}
	}
	if resp.StatusCode != http.StatusOK {
		_ = pw.Close()
		he := newHTTPError(p.tmpl.Origin(), resp)
		resp.Body.Close()
		he.URL = "CONNECT " + authority + " via " + p.tmpl.Origin()
		if knowsNoConnect(he.StatusCode, he.ProxyStatus) {
			he.Err = ErrNoTunnel
		}
		return nil, &relayError{he}
	}
	return &tunnelConn{r: resp.Body, w: pw}, nil
}

// knowsNoConnect reports whether a status is what a server without the
// tunnel answers to CONNECT: 405 or 501, the method refused (this
// project's proxy with tunnels off says 405 too), or 400 or 404 without a
// Proxy-Status (Go's and most servers route CONNECT like any request and
// find no handler, or call it malformed; this project's proxy, refusing
// one destination, says why in Proxy-Status).
func knowsNoConnect(status int, proxyStatus string) bool {
	switch status {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	case http.StatusBadRequest, http.StatusNotFound:
		return proxyStatus == ""
	}
	return false
}

// tunnelConn is a CONNECT stream as a net.Conn: reads come from the
// response body, writes go to the request body. Deadlines are not
// supported; the caller bounds the tunnel with its context.
type tunnelConn struct {
	r    io.ReadCloser
	w    *io.PipeWriter
	once sync.Once
}

func (c *tunnelConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *tunnelConn) Write(p []byte) (int, error) { return c.w.Write(p) }

func (c *tunnelConn) Close() error {
	c.once.Do(func() {
		_ = c.w.Close()
		_ = c.r.Close()
	})
	return nil
}

func (c *tunnelConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (c *tunnelConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (c *tunnelConn) SetDeadline(time.Time) error      { return nil }
func (c *tunnelConn) SetReadDeadline(time.Time) error  { return nil }
func (c *tunnelConn) SetWriteDeadline(time.Time) error { return nil }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "tunnel" }
func (tunnelAddr) String() string  { return "tunnel" }

// oneShot is an http.RoundTripper for a single HTTP/1.1 request on conn,
// which then closes.
type oneShot struct {
	conn net.Conn
	used bool
}

var errOneShot = errors.New("tunnel already used")

func (o *oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	if o.used {
		return nil, errOneShot
	}
	o.used = true
	req.Close = true
	if err := req.Write(o.conn); err != nil {
		return nil, err
	}
	return http.ReadResponse(bufio.NewReader(o.conn), req)
}

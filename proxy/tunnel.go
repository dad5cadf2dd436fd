package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/odohd/odoh/internal/connlimit"
	"github.com/odohd/odoh/internal/tlshello"
	"github.com/odohd/odoh/odoh"
)

// Defaults of the configs tunnel (see Handler).
const (
	// DefaultTunnelTimeout bounds a tunnel's whole life: a TLS handshake
	// and one configs request need a few round trips.
	DefaultTunnelTimeout = 10 * time.Second
	// DefaultTunnelMaxBytes bounds the bytes a tunnel carries, both
	// directions together: a handshake with a certificate chain and a
	// configs list are a few KiB.
	DefaultTunnelMaxBytes = 64 << 10
	// DefaultMaxTunnels bounds the tunnels open at once over all clients.
	DefaultMaxTunnels = 256
	// DefaultMaxTunnelsPerClient bounds the tunnels one client (the rate
	// limiter's key) has open at once.
	DefaultMaxTunnelsPerClient = 4
)

// tunnels holds the configs tunnel's limits and counts.
type tunnels struct {
	timeout  time.Duration
	maxBytes int64
	open     *connlimit.Limiter // tunnels open, overall and per client
}

func newTunnels(cfg Config) *tunnels {
	if cfg.DisableTunnel {
		return nil
	}
	return &tunnels{
		timeout:  orInt(cfg.TunnelTimeout, DefaultTunnelTimeout),
		maxBytes: orInt(cfg.TunnelMaxBytes, DefaultTunnelMaxBytes),
		open: connlimit.New(orInt(cfg.MaxTunnels, DefaultMaxTunnels),
			orInt(cfg.MaxTunnelsPerClient, DefaultMaxTunnelsPerClient)),
	}
}

// serveTunnel answers CONNECT HOST:PORT (HTTP/1.1, HTTP/2 and HTTP/3): a
// byte stream to an allowed target's HTTPS port, so that a client can fetch
// the target's configs in a TLS session of its own (see the package doc).
// The destination passes the same policy and dialer as forwarded queries;
// the stream is bounded in bytes and time, and must start with a TLS
// ClientHello for HOST (see forwardHello).
func (h *Handler) serveTunnel(w http.ResponseWriter, r *http.Request) {
	if err := h.tunnel(w, r); err != nil && !errors.Is(err, errClientGone) {
		// Tunnels are counted apart from requests.
		h.countTunnel(h.writeFailure(w, r, err).tunnelResult())
	}
}

// Refusals of a tunnel that carry nothing of the request.
var (
	errNoTunnel       = &failure{status: http.StatusMethodNotAllowed, kind: odoh.ProxyHTTPRequestError, details: "no tunnel here", allow: allowPost}
	errBadAuthority   = requestError(http.StatusBadRequest, "malformed CONNECT authority")
	errTooManyTunnels = denied(http.StatusTooManyRequests, "too many tunnels")
	errCannotHijack   = &failure{status: http.StatusInternalServerError, kind: odoh.ProxyHTTPRequestError, details: "cannot hijack"}
)

// tunnel runs a tunnel's stages: the same admission, policy and dialer as
// a query, then the splice.
func (h *Handler) tunnel(w http.ResponseWriter, r *http.Request) error {
	if h.tunnels == nil || r.Header.Get(":protocol") != "" {
		return errNoTunnel
	}
	client := clientKey(r.RemoteAddr)
	if err := h.admit(client); err != nil {
		return err
	}
	defer h.leave(client)
	t, err := parseTargetHost(r.Host)
	if err != nil || !hasPort(r.Host) {
		return errBadAuthority
	}
	if den := h.policy.Load().check(t); den != nil {
		return atTarget(t, &failure{status: http.StatusForbidden, kind: den.kind, details: den.details})
	}
	if h.tunnels.open.Acquire(client) != nil {
		return atTarget(t, errTooManyTunnels)
	}
	defer h.tunnels.open.Release(client)

	ctx, cancel := context.WithTimeoutCause(r.Context(), h.tunnels.timeout, errTunnelTimeout)
	defer cancel()
	up, err := h.dialer.dialTCP(ctx, t.key)
	if err != nil {
		return atTarget(t, classify(ctx, err))
	}
	defer up.Close()
	h.countTunnel(tunnelOpened)
	down, err := h.acceptTunnel(w, r, ctx)
	if err != nil {
		return err
	}
	defer down.Close()
	h.metrics.TunnelsOpen(1)
	defer h.metrics.TunnelsOpen(-1)
	n := splice(ctx, down, up, t, h.tunnels.maxBytes, func() { h.countTunnel(tunnelCut) })
	h.metrics.TunnelBytes(n)
	return nil
}

// tunnelResult is the tunnel's label for a failure, by status.
func (f *failure) tunnelResult() tunnelResult {
	switch {
	case f.status == http.StatusForbidden:
		return tunnelDenied
	case f.status == http.StatusTooManyRequests:
		return tunnelRateLimited
	case f.status == http.StatusBadGateway || f.status == http.StatusGatewayTimeout:
		return tunnelUpstreamError
	}
	return tunnelRefused
}

// hasPort reports whether a CONNECT authority names a port, as RFC 9110
// §9.3.6 requires.
func hasPort(authority string) bool {
	_, port, err := net.SplitHostPort(authority)
	return err == nil && port != ""
}

// acceptTunnel answers 200 and returns the client's side of the tunnel:
// the hijacked connection on HTTP/1.1, the request stream on HTTP/2 and
// HTTP/3. Once the 200 is out, an error is errClientGone: there is nobody
// left to answer.
func (h *Handler) acceptTunnel(w http.ResponseWriter, r *http.Request, ctx context.Context) (io.ReadWriteCloser, error) {
	rc := http.NewResponseController(w)
	// The streams' own deadlines are a backstop, a little after ctx's: the
	// tunnel is cut (and counted) by splice first.
	deadline, _ := ctx.Deadline()
	deadline = deadline.Add(time.Second)
	if r.ProtoMajor == 1 {
		conn, brw, err := rc.Hijack()
		if err != nil {
			return nil, errCannotHijack
		}
		_ = conn.SetDeadline(deadline)
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
			conn.Close()
			return nil, errClientGone
		}
		return &hijacked{Conn: conn, r: brw.Reader}, nil
	}
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, errClientGone
	}
	return &stream{w: w, rc: rc, body: r.Body}, nil
}

// hijacked is an HTTP/1.1 connection after CONNECT; r holds what the
// server had already buffered.
type hijacked struct {
	net.Conn
	r *bufio.Reader
}

func (c *hijacked) Read(p []byte) (int, error) { return c.r.Read(p) }

// stream is an HTTP/2 or HTTP/3 CONNECT stream: reads from the request
// body, writes flushed to the response.
type stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	body io.ReadCloser
}

func (s *stream) Read(p []byte) (int, error) { return s.body.Read(p) }

func (s *stream) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err == nil {
		err = s.rc.Flush()
	}
	return n, err
}

func (s *stream) Close() error { return s.body.Close() }

var (
	errTunnelBytes   = errors.New("tunnel byte limit")
	errWrongName     = errors.New("tunnel's TLS server name is not its destination")
	errTunnelTimeout = errors.New("tunnel timeout")
)

// splice copies between the client's side (down) and the target's (up)
// until both directions end, ctx ends, or maxBytes have passed in all.
// The client's first record must be a TLS ClientHello for t (see
// checkHello). cut is called, before anything is closed, when a limit
// (bytes, ctx's errTunnelTimeout, not TLS for t) ends the tunnel. It
// returns the bytes carried.
func splice(ctx context.Context, down io.ReadWriteCloser, up net.Conn, t *target, maxBytes int64, cut func()) int64 {
	var total atomic.Int64
	var once sync.Once
	end := func(limited bool) {
		once.Do(func() {
			if limited {
				cut()
			}
			_ = up.Close()
			_ = down.Close()
		})
	}
	// The streams' deadlines are ctx's: one that fires first is the time
	// limit too.
	isLimit := func(err error) bool {
		return errors.Is(err, errTunnelBytes) || errors.Is(err, tlshello.ErrNotHello) || errors.Is(err, errWrongName) ||
			errors.Is(err, os.ErrDeadlineExceeded)
	}
	stop := context.AfterFunc(ctx, func() { end(errors.Is(context.Cause(ctx), errTunnelTimeout)) })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		err := forwardHello(up, down, t, &total, maxBytes)
		if err == nil {
			err = copyCapped(up, down, &total, maxBytes)
		}
		if err == nil {
			// The client finished sending: pass the half-close on, and
			// let the target's answer come back.
			if tc, ok := up.(interface{ CloseWrite() error }); ok {
				_ = tc.CloseWrite()
				return
			}
		}
		end(isLimit(err))
	})
	err := copyCapped(down, up, &total, maxBytes)
	end(isLimit(err))
	wg.Wait()
	return total.Load()
}

// forwardHello reads the client's first record and passes it to dst if it
// is a TLS ClientHello for t: the tunnel carries a TLS session with the
// target it was opened to, not one with another name that the same
// address serves (a CDN's other sites, say), nor anything else.
func forwardHello(dst io.Writer, src io.Reader, t *target, total *atomic.Int64, limit int64) error {
	rec, name, err := tlshello.Read(src)
	if err != nil {
		return err
	}
	if total.Add(int64(len(rec))) > limit {
		return errTunnelBytes
	}
	if err := checkHello(t, name); err != nil {
		return err
	}
	_, err = dst.Write(rec)
	return err
}

// checkHello checks a ClientHello's server name against the tunnel's
// destination: the same name (case aside, RFC 6066 §3), or none for an IP
// literal, which SNI cannot carry.
func checkHello(t *target, serverName string) error {
	want := t.host
	if t.addr.IsValid() {
		want = ""
	}
	if !strings.EqualFold(strings.TrimSuffix(serverName, "."), want) {
		return fmt.Errorf("%w: %q", errWrongName, serverName)
	}
	return nil
}

// copyCapped copies src to dst while total stays within limit. It
// returns nil at src's end.
func copyCapped(dst io.Writer, src io.Reader, total *atomic.Int64, limit int64) error {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if total.Add(int64(n)) > limit {
				return errTunnelBytes
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

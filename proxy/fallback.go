package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/odohd/odoh/odoh"
)

// DefaultHTTP3Retry is how long a target whose HTTP/3 handshake failed is
// reached over HTTP/2 before the proxy tries HTTP/3 with it again.
const DefaultHTTP3Retry = 5 * time.Minute

// h3Fallback is the upstream transport with TargetHTTP3: HTTP/3 first. A
// target that does not complete the QUIC handshake (nothing listening on
// UDP, a firewall, no h3) gets the request over HTTP/2 at once, and is
// remembered for HTTP3Retry, so that only one request in that time waits
// for the handshake to fail (at most ConnectTimeout) rather than every one.
type h3Fallback struct {
	h3, h2 http.RoundTripper
	retry  time.Duration
	log    *slog.Logger
	now    func() time.Time

	mu   sync.Mutex
	noH3 map[string]time.Time // target authority → when to try HTTP/3 again
}

func (f *h3Fallback) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.URL.Host
	if f.skip(key) {
		return f.h2.RoundTrip(req)
	}
	resp, err := f.h3.RoundTrip(req)
	if err == nil || !handshakeFailed(err) || req.Context().Err() != nil || req.GetBody == nil {
		return resp, err
	}
	f.remember(key, err)
	if req.Body != nil {
		_ = req.Body.Close() // the HTTP/3 transport may not have
	}
	body, berr := req.GetBody()
	if berr != nil {
		return nil, err
	}
	again := *req // the same shared header set, the body anew
	again.Body = body
	return f.h2.RoundTrip(&again)
}

// skip reports whether key is to be reached over HTTP/2 for now.
func (f *h3Fallback) skip(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.noH3[key]
	if !ok {
		return false
	}
	if f.now().Before(until) {
		return true
	}
	delete(f.noH3, key)
	return false
}

// remember notes that key failed the HTTP/3 handshake, and says so once.
func (f *h3Fallback) remember(key string, err error) {
	f.mu.Lock()
	_, known := f.noH3[key]
	if !known && len(f.noH3) >= DefaultMaxCachedConfigs {
		clear(f.noH3) // bounded: at worst, each target pays one more handshake
	}
	f.noH3[key] = f.now().Add(f.retry)
	f.mu.Unlock()
	if !known {
		f.log.Warn("target did not complete an HTTP/3 handshake; reaching it over HTTP/2 for a while",
			"target", key, "retry_http3_after", f.retry, "err", err.Error())
	}
}

// handshakeFailed reports whether err is the failure to set up a QUIC
// connection that HTTP/2 over TCP may not share: no answer, a refusal, a
// TLS or QUIC error during the handshake. DNS errors and the policy's
// refusals would fail HTTP/2 the same way.
func handshakeFailed(err error) bool {
	var de *dialError
	if !errors.As(err, &de) {
		return false
	}
	switch de.kind {
	case odoh.ProxyConnectionTimeout, odoh.ProxyConnectionRefused, odoh.ProxyTLSProtocolError,
		odoh.ProxyDestinationUnavailable, odoh.ProxyConnectionTerminated:
		return true
	}
	return false
}

// CloseIdleConnections closes both transports' idle connections (after a
// policy change).
func (f *h3Fallback) CloseIdleConnections() {
	for _, rt := range []http.RoundTripper{f.h3, f.h2} {
		if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
			ci.CloseIdleConnections()
		}
	}
}

package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
)

// A relayed request is a few stages, each returning a value or an error
// (a *failure, or errClientGone) that answerError turns into the response.
// The query relay runs them all; the configs relay and other relays of
// this package reuse them.

// serveQuery relays an ODoH query to its target.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request) {
	if err := h.relayQuery(w, r); err != nil {
		h.answerError(w, r, err)
	}
}

func (h *Handler) relayQuery(w http.ResponseWriter, r *http.Request) (err error) {
	if r.Method != http.MethodPost {
		return errMethodNotPost
	}
	client := clientKey(r.RemoteAddr)
	if err := h.admit(client); err != nil {
		return err
	}
	defer h.leave(client)
	if !isODoHType(r.Header["Content-Type"]) {
		return errNotODoH
	}
	t, u, err := h.queryTarget(r.URL.RawQuery)
	if err != nil {
		return err
	}
	defer func() { err = atTarget(t, err) }()
	ex := h.getExchange()
	defer ex.release()
	if err = h.readRequestBody(w, r, ex, h.maxRequestBody); err != nil {
		return err
	}
	if err := h.enter(); err != nil {
		return err
	}
	defer h.exit()
	resp, err := h.forward(r, u, h.upHeader, ex, h.maxResponseBody)
	if err != nil {
		return err
	}
	if err := checkResponse(resp, odoh.ContentType); err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// The target no longer has the key the client used (RFC 9230 §4.3):
		// the client will refetch configs through us, so ours are stale.
		h.configs.markStale(t, odoh.ConfigsPath)
	}
	h.relay(w, resp, ex.resp)
	return nil
}

// admit applies the client's rate limit and takes one of its slots (429
// when either is exhausted). A nil result must be matched by leave.
func (h *Handler) admit(client netip.Addr) error {
	if h.limiter != nil && !h.limiter.allow(client, time.Now()) {
		return errClientRate
	}
	if h.clients != nil && h.clients.Acquire(client) != nil {
		return errClientSlots
	}
	return nil
}

// leave gives back the slot admit took.
func (h *Handler) leave(client netip.Addr) {
	if h.clients != nil {
		h.clients.Release(client)
	}
}

// enter takes a slot of the global cap (429 beyond). Only a request whose
// body is in does so: a client that is slow to send holds its own slots,
// nobody else's. A nil result must be matched by exit.
func (h *Handler) enter() error {
	if n := h.inflight.Add(1); n > h.maxConcurrent {
		h.inflight.Add(-1)
		return errConcurrency
	}
	h.metrics.Inflight(1)
	return nil
}

// exit gives back the slot enter took.
func (h *Handler) exit() {
	h.inflight.Add(-1)
	h.metrics.Inflight(-1)
}

// route reads targethost (and targetpath, if withPath) from a raw query,
// looks the host up in the policy in force and checks it there: 400 for a
// malformed request, 403 for a target outside the policy.
func (h *Handler) route(rawQuery string, withPath bool) (t *target, pathArg string, err error) {
	hostArg, pathArg, msg := targetArgs(rawQuery, withPath)
	if msg != "" {
		return nil, "", requestError(http.StatusBadRequest, msg)
	}
	pol := h.policy.Load()
	if t, err = pol.lookup(hostArg); err != nil {
		return nil, "", errBadTargetHost
	}
	if withPath && (pathArg != odoh.QueryPath || t.queryURL == nil) {
		if checkTargetPath(pathArg) != nil {
			return nil, "", errBadTargetPath
		}
	}
	if den := pol.check(t); den != nil {
		return nil, "", atTarget(t, &failure{status: http.StatusForbidden, kind: den.kind, details: den.details})
	}
	return t, pathArg, nil
}

// queryTarget routes a query and returns the URL it goes to, built
// structurally from the checked host and path.
func (h *Handler) queryTarget(rawQuery string) (*target, *url.URL, error) {
	t, pathArg, err := h.route(rawQuery, true)
	if err != nil {
		return nil, nil, err
	}
	if pathArg == odoh.QueryPath && t.queryURL != nil {
		return t, t.queryURL, nil
	}
	return t, &url.URL{Scheme: "https", Host: t.urlHost, Path: pathArg}, nil
}

// targetArgs extracts targethost and targetpath (percent-decoded) from a
// raw query. Each must appear exactly once; other parameters are ignored.
// withPath false skips targetpath (the configs relay). msg is the error.
func targetArgs(raw string, withPath bool) (host, path, msg string) {
	var nHost, nPath int
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "targethost":
			nHost++
			host = v
		case "targetpath":
			nPath++
			path = v
		}
	}
	switch {
	case nHost == 0:
		return "", "", "missing targethost"
	case nHost > 1:
		return "", "", "repeated targethost"
	case withPath && nPath == 0:
		return "", "", "missing targetpath"
	case withPath && nPath > 1:
		return "", "", "repeated targetpath"
	}
	var err error
	// PathUnescape keeps '+' literal: RFC 6570 encodes a space as %20.
	if host, err = url.PathUnescape(host); err != nil || host == "" {
		return "", "", "malformed targethost"
	}
	if withPath {
		if path, err = url.PathUnescape(path); err != nil || path == "" {
			return "", "", "malformed targetpath"
		}
	}
	return host, path, ""
}

// readRequestBody reads r's body into ex.req within BodyReadTimeout: 413
// over limit (the relay's MaxRequestBody), 408 past the timeout, 400 for
// an empty or broken body.
func (h *Handler) readRequestBody(w http.ResponseWriter, r *http.Request, ex *exchange, limit int64) (err error) {
	if r.ProtoMajor == 2 {
		// Each read deadline set on net/http's HTTP/2 server is a message
		// to the connection's serving goroutine (and a timer there), two
		// per request; a body that arrives in time needs none.
		et := ex.arm(h.bodyReadTimeout, w, nil)
		ex.req, err = h.chunks.Read(r.Body, ex.req[:0], r.ContentLength, limit)
		if ex.disarm(et) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
	} else {
		rc := http.NewResponseController(w)
		// A writer without deadlines (httptest's) leaves the server's
		// ReadTimeout as the only bound.
		timed := rc.SetReadDeadline(time.Now().Add(h.bodyReadTimeout)) == nil
		ex.req, err = h.chunks.Read(r.Body, ex.req[:0], r.ContentLength, limit)
		if timed {
			// Clear it: it bounds the body only, and on HTTP/1 it is the
			// whole connection's deadline, not this request's.
			_ = rc.SetReadDeadline(time.Time{})
		}
	}
	switch {
	case errors.Is(err, httpbody.ErrTooLarge):
		return errBodyTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded): // net/http and quic-go both wrap it
		return errBodyTimeout
	case err != nil && clientGone(r):
		return errClientGone
	case err != nil:
		return errBodyRead
	case len(ex.req) == 0:
		return errEmptyBody
	}
	return nil
}

// forward sends the body in ex to u with the header set hdr, within
// ResponseTimeout, and reads the target's response body into ex.resp (502
// beyond limit, the relay's MaxResponseBody). The response's body is
// closed; its status and header remain. Failures are classified for
// Proxy-Status, unless the client went away (which aborts the exchange:
// not the target's fault).
func (h *Handler) forward(r *http.Request, u *url.URL, hdr http.Header, ex *exchange, limit int64) (*http.Response, error) {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	et := ex.arm(h.responseTimeout, nil, cancel) // cancels ctx with errResponseDeadline
	resp, err := h.roundTrip(ctx, u, hdr, ex)
	if err == nil {
		ex.resp, err = h.chunks.Read(resp.Body, ex.resp[:0], resp.ContentLength, limit)
		resp.Body.Close()
		if errors.Is(err, httpbody.ErrTooLarge) {
			err = &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPResponseBodySize, err: err}
		}
	}
	ex.disarm(et)
	h.metrics.UpstreamDuration(time.Since(start))
	switch {
	case err == nil:
		return resp, nil
	case clientGone(r):
		return nil, errClientGone
	}
	return nil, classify(ctx, err)
}

// roundTrip sends the body in ex to u. The request is built from scratch:
// method, URL, the header set and the body; nothing else.
func (h *Handler) roundTrip(ctx context.Context, u *url.URL, hdr http.Header, ex *exchange) (*http.Response, error) {
	body, _ := ex.newBody()
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          body,
		GetBody:       ex.getBody,
		ContentLength: int64(len(ex.req)),
		Host:          u.Host,
	}
	return h.upstream.RoundTrip(req.WithContext(ctx))
}

// checkResponse refuses (502, with the received status) a target's
// response that cannot be relayed: a status outside 200..599, or a 2xx
// without mediaType.
func checkResponse(resp *http.Response, mediaType string) error {
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 599:
		// Go's HTTP/2 and HTTP/3 clients accept any numeric :status, and
		// relaying one outside 200..599 would be invalid (WriteHeader panics
		// outside 100..999; 1xx must not be forwarded).
		return &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPProtocolError,
			details: "target sent an invalid status", received: resp.StatusCode}
	case resp.StatusCode/100 == 2 && !odoh.HasContentType(resp.Header["Content-Type"], mediaType):
		return &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPProtocolError,
			details: "target response is not " + mediaType, received: resp.StatusCode}
	}
	return nil
}

// relay answers with the target's status and body: only its Content-Type
// and Cache-Control (no-store if it sent none, or only empty ones) come
// along, with Proxy-Status naming the received status.
func (h *Handler) relay(w http.ResponseWriter, resp *http.Response, body []byte) {
	h.writeRelayed(w, resp, body)
	h.count(resForwarded)
}

// writeRelayed writes what relay answers, which the OHTTP relay counts
// apart.
func (h *Handler) writeRelayed(w http.ResponseWriter, resp *http.Response, body []byte) {
	hdr := w.Header()
	if ct := resp.Header["Content-Type"]; len(ct) > 0 {
		hdr["Content-Type"] = ct[:1:1]
	}
	hdr["Cache-Control"] = relayedCacheControl(resp.Header["Cache-Control"])
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	hdr["Proxy-Status"] = h.status.receivedStatus(resp.StatusCode)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// relayedCacheControl is the Cache-Control relayed for a target's cc:
// its non-empty values, or no-store when it sent none (an empty field,
// "Cache-Control: ", counts as none: a client must never get a response
// without the field).
func relayedCacheControl(cc []string) []string {
	if !slices.Contains(cc, "") {
		if len(cc) == 0 {
			return noStore
		}
		return cc
	}
	if kept := slices.DeleteFunc(slices.Clone(cc), func(v string) bool { return v == "" }); len(kept) > 0 {
		return kept
	}
	return noStore
}

// clientGone reports whether r's client went away (net/http and quic-go
// cancel the request's context when its stream or connection ends).
func clientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled)
}

// isODoHType reports whether a Content-Type header is exactly one value
// naming the ODoH media type, as every role reads it.
func isODoHType(v []string) bool {
	return odoh.HasContentType(v, odoh.ContentType)
}

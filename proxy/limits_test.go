package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/metrics/metricstest"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// clientFrom returns an HTTP/2 client whose connections come from local
// address ip (another loopback address is another client to the proxy).
// It waits a minute for an answer, so that requests a test holds stalled
// stay stalled however slow the machine.
func clientFrom(t *testing.T, ca *testca.CA, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true, DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// slowPost starts a POST declaring a body of n bytes that never arrives; it
// returns the writer of that body (close it to end the request) and a
// channel that delivers the response, or nil if the request failed.
func slowPost(t *testing.T, c *http.Client, u string, n int64) (*io.PipeWriter, <-chan *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	req, err := http.NewRequest(http.MethodPost, u, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", odoh.ContentType)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			done <- nil
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp
	}()
	return pw, done
}

// patientClient is an HTTP/2 or HTTP/3 client that waits a minute for an
// answer: a timeout under test answers long before, whatever the load.
func patientClient(t *testing.T, ca *testca.CA, h3 bool) *http.Client {
	t.Helper()
	if h3 {
		tr := &http3.Transport{TLSClientConfig: ca.ClientTLS()}
		t.Cleanup(func() { _ = tr.Close() })
		return &http.Client{Transport: tr, Timeout: time.Minute}
	}
	tr := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// waitFor polls cond until it holds; the deadline only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowBodyDoesNotBlockOthers: a client that declares bodies and never
// sends them holds only its own slots (MaxConcurrentPerClient), not the
// global cap. Before the fix the stalled requests held the only global slot
// and the other client got 429 for the server's whole ReadTimeout. The body
// deadline is a minute here, so the stalled requests are still stalled
// while the others are answered, however slow the machine.
func TestSlowBodyDoesNotBlockOthers(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}},
		MaxConcurrent: 1, MaxConcurrentPerClient: 2, BodyReadTimeout: time.Minute})
	u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
	slow := clientFrom(t, ca, "127.0.0.2")

	var writers []*io.PipeWriter
	var stalled []<-chan *http.Response
	for range 2 {
		pw, done := slowPost(t, slow, u, 65000)
		writers, stalled = append(writers, pw), append(stalled, done)
	}
	waitFor(t, "two stalled requests", func() bool { return tp.h.clients.Stats().Open == 2 })

	// The slow client's third request exceeds its own cap...
	resp, _ := post(t, slow, u, []byte("q"), nil)
	wantProxyStatus(t, resp, http.StatusTooManyRequests, odoh.ProxyHTTPRequestDenied)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on 429")
	}
	// ...while another client's query goes through, the stalled requests
	// still holding their slots.
	resp, body := post(t, tp.h2, u, []byte("q"), nil)
	wantProxyStatus(t, resp, http.StatusOK, relayed)
	if string(body) != "q" {
		t.Errorf("body %q", body)
	}
	if st := tp.h.clients.Stats(); st.Open != 2 || st.Clients != 1 {
		t.Errorf("after the other's answer %d requests of %d clients hold slots, want the slow client's 2", st.Open, st.Clients)
	}
	for i, done := range stalled {
		select {
		case <-done:
			t.Errorf("stalled request %d ended before its body came", i)
		default:
		}
	}

	// The slow client gives up: its slots go, and so do their entries
	// (memory holds only clients with requests in progress).
	for _, pw := range writers {
		pw.CloseWithError(errors.New("client gave up"))
	}
	for _, done := range stalled {
		<-done
	}
	waitFor(t, "empty per-client table", func() bool { return tp.h.clients.Stats().Clients == 0 })
	if tp.h.inflight.Load() != 0 {
		t.Errorf("global inflight = %d after all requests ended", tp.h.inflight.Load())
	}
	if n := len(tgt.requests()); n != 1 {
		t.Errorf("target saw %d requests, want 1", n)
	}
}

// TestSlowBodyTimesOut: a body that does not arrive within BodyReadTimeout
// gets 408, over HTTP/2 and HTTP/3. Everything else waits a minute (the
// clients, the server's own read timeout), so the 408 can only be the body
// deadline's.
func TestSlowBodyTimesOut(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	const bodyTimeout = 300 * time.Millisecond
	tp := startProxyServer(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, BodyReadTimeout: bodyTimeout},
		func(s *httpserve.Server) { s.ReadTimeout = time.Minute })
	for _, h3 := range []bool{false, true} {
		began := time.Now()
		_, done := slowPost(t, patientClient(t, ca, h3), tp.queryURL(tgt.hostPort(), "%2Fdns-query"), 100)
		resp := <-done
		if resp == nil {
			t.Fatalf("h3=%v: the stalled request failed instead of getting 408", h3)
		}
		wantProxyStatus(t, resp, http.StatusRequestTimeout, odoh.ProxyHTTPRequestError)
		if d := time.Since(began); d < bodyTimeout {
			t.Errorf("h3=%v: 408 after %v, before the %v deadline", h3, d, bodyTimeout)
		}
	}
	if n := len(tgt.requests()); n != 0 {
		t.Errorf("target saw %d requests", n)
	}
}

// TestUpstreamHeaderLimit: a target's oversize response headers are a 502
// over both upstream protocols (HTTP/3 used quic-go's 10 MB default).
func TestUpstreamHeaderLimit(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", odoh.ContentType)
		if r.Header.Get("Content-Length") != "5" {
			w.Header().Set("X-Big", strings.Repeat("b", maxUpstreamHeaderBytes+1024))
		}
		_, _ = w.Write(body)
	})
	for _, h3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "h2", true: "h3"}[h3], func(t *testing.T) {
			tp := startProxy(t, ca, Config{TargetHTTP3: h3, Policy: Policy{Allow: []string{tgt.hostPort()}}})
			if h3 {
				if got := tp.h.upstream.(*h3Fallback).h3.(*http3.Transport).MaxResponseHeaderBytes; got != maxUpstreamHeaderBytes {
					t.Errorf("HTTP/3 MaxResponseHeaderBytes = %d", got)
				}
			}
			u := tp.queryURL(tgt.hostPort(), "%2Fdns-query")
			// A small header passes (the transport works at all)...
			resp, _ := post(t, tp.h2, u, []byte("small"), nil)
			wantProxyStatus(t, resp, http.StatusOK, relayed)
			// ...an oversize one does not.
			resp, _ = post(t, tp.h2, u, []byte("q"), nil)
			if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Proxy-Status"), "odoh-proxy; error=") {
				t.Errorf("oversize headers: %d, Proxy-Status %q", resp.StatusCode, resp.Header.Get("Proxy-Status"))
			}
			if resp.Header.Get("X-Big") != "" {
				t.Error("oversize header relayed")
			}
		})
	}
}

// TestCloseFreesUDPSocket: in HTTP/3 upstream mode Close releases the UDP
// socket the proxy opened (quic.Transport.Close leaves it open), so its
// port can be bound again.
func TestCloseFreesUDPSocket(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	h, err := New(Config{TargetHTTP3: true, RootCAs: ca.Pool(), Resolver: noResolver(),
		Policy: Policy{Allow: []string{tgt.hostPort()}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Use the socket for a real exchange first.
	req := httptest.NewRequest(http.MethodPost, "/dns-query?targethost="+tgt.hostPort()+"&targetpath=%2Fdns-query", strings.NewReader("q"))
	req.Header.Set("Content-Type", odoh.ContentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("query over HTTP/3: %d %s", rec.Code, rec.Header().Get("Proxy-Status"))
	}
	addr := h.dialer.quic.Conn.LocalAddr().(*net.UDPAddr)
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		t.Fatalf("port %d still bound after Close: %v", addr.Port, err)
	}
	pc.Close()
}

// TestClientClosed: a client that goes away while its query is at the
// target (or while it waits for configs) is counted as client_closed, not
// as a failure of the target. Before, it was a 502 destination_unavailable
// counted as upstream_error.
func TestClientClosed(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	arrived := make(chan struct{}, 2)
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		arrived <- struct{}{}
		<-r.Context().Done() // never answers; the proxy gives up when its client does
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	for i, u := range []string{
		tp.queryURL(tgt.hostPort(), "%2Fdns-query"),
		tp.base + odoh.ConfigsPath + "?targethost=" + tgt.hostPort(),
	} {
		ctx, cancel := context.WithCancel(context.Background())
		method := http.MethodPost
		if i == 1 {
			method = http.MethodGet
		}
		req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader("q"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", odoh.ContentType)
		errc := make(chan error, 1)
		go func() {
			resp, err := tp.h2.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		<-arrived
		cancel()
		if err := <-errc; err == nil {
			t.Fatalf("%s: request succeeded after cancel", method)
		}
		want := float64(i + 1)
		waitFor(t, "client_closed to count", func() bool { return resultCount(t, tp, "client_closed") == want })
	}
	for _, name := range []string{"upstream_error", "upstream_timeout"} {
		if n := resultCount(t, tp, name); n != 0 {
			t.Errorf("%s = %v after clients went away", name, n)
		}
	}
}

// TestBodyDeadlineOnlyBoundsBody: BodyReadTimeout bounds reading the
// body, not the exchange: a target slower than it still answers, over each
// client protocol (on HTTP/1.1 the deadline is the connection's).
func TestBodyDeadlineOnlyBoundsBody(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	const bodyTimeout = 200 * time.Millisecond
	tgt.setRespond(func(w http.ResponseWriter, _ *http.Request, body []byte) {
		time.Sleep(2 * bodyTimeout)
		w.Header().Set("Content-Type", odoh.ContentType)
		_, _ = w.Write(body)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, BodyReadTimeout: bodyTimeout})
	h1 := &http.Transport{TLSClientConfig: ca.ClientTLS()} // a custom TLS config without ForceAttemptHTTP2: HTTP/1.1
	t.Cleanup(h1.CloseIdleConnections)
	for _, tc := range []struct {
		major int
		c     *http.Client
	}{
		{1, &http.Client{Transport: h1, Timeout: 10 * time.Second}},
		{2, tp.h2},
		{3, tp.h3},
	} {
		resp, body := post(t, tc.c, tp.queryURL(tgt.hostPort(), "%2Fdns-query"), []byte("q1"), nil)
		if resp.ProtoMajor != tc.major {
			t.Fatalf("client spoke %s, want major %d", resp.Proto, tc.major)
		}
		wantProxyStatus(t, resp, http.StatusOK, relayed)
		if string(body) != "q1" {
			t.Errorf("HTTP/%d: body %q", tc.major, body)
		}
	}
}

// resultCount reads odoh_proxy_requests_total{result=name} from tp (0
// before the first such request).
func resultCount(t *testing.T, tp *testProxy, name string) float64 {
	t.Helper()
	v, _ := metricstest.Value(t, tp.reg, "odoh_proxy_requests_total", map[string]string{"result": name})
	return v
}

// deadlineWriter is a ResponseWriter that records the read deadlines set
// on it (http.ResponseController finds SetReadDeadline) and, for one in
// the past, ends the blocked body read as net/http does.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	body *io.PipeWriter // the body's writer; nil: no body to end
	mu   sync.Mutex
	set  []time.Time
}

func (d *deadlineWriter) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	d.set = append(d.set, t)
	d.mu.Unlock()
	if d.body != nil && !t.IsZero() && t.Before(time.Now()) {
		d.body.CloseWithError(fmt.Errorf("reading body: %w", os.ErrDeadlineExceeded))
	}
	return nil
}

func (d *deadlineWriter) deadlines() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.set)
}

// TestBodyDeadlineOnlyWhenLate: over HTTP/2, where each read deadline set
// is a message to the connection's serving goroutine, a body that arrives
// within BodyReadTimeout sets none; a late one gets a deadline in the past
// once the timeout has run out (then 408), and a cleared one after. Over
// HTTP/1.1, where the deadline is the connection's, it is set before the
// read and cleared after, as before.
func TestBodyDeadlineOnlyWhenLate(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	const bodyTimeout = 50 * time.Millisecond
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}, ClientRate: -1, BodyReadTimeout: bodyTimeout})
	u := "/dns-query?targethost=" + tgt.hostPort() + "&targetpath=%2Fdns-query"
	query := func(major int, body io.Reader, dw *deadlineWriter) {
		req := httptest.NewRequest(http.MethodPost, u, body)
		req.ProtoMajor = major
		req.Header.Set("Content-Type", odoh.ContentType)
		tp.h.ServeHTTP(dw, req)
	}
	for i := range 3 { // the exchange and its timer are reused
		dw := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
		query(2, strings.NewReader("q"), dw)
		if dw.Code != http.StatusOK {
			t.Fatalf("HTTP/2 query %d: %d", i, dw.Code)
		}
		if got := dw.deadlines(); len(got) != 0 {
			t.Fatalf("HTTP/2 query %d, body in time: read deadlines %v set, want none", i, got)
		}
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	dw := &deadlineWriter{ResponseRecorder: httptest.NewRecorder(), body: pw}
	began := time.Now()
	query(2, pr, dw)
	wantProxyStatus(t, dw.Result(), http.StatusRequestTimeout, odoh.ProxyHTTPRequestError)
	if got := dw.deadlines(); len(got) != 2 || got[0].IsZero() || !got[0].Before(began) || !got[1].IsZero() {
		t.Errorf("HTTP/2, late body: read deadlines %v, want one in the past, then cleared", got)
	}
	if d := time.Since(began); d < bodyTimeout {
		t.Errorf("408 after %v, before the %v timeout", d, bodyTimeout)
	}
	dw = &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	query(2, strings.NewReader("q"), dw)
	if dw.Code != http.StatusOK || len(dw.deadlines()) != 0 {
		t.Errorf("HTTP/2 query after a late one: %d, deadlines %v", dw.Code, dw.deadlines())
	}

	dw = &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	began = time.Now()
	query(1, strings.NewReader("q"), dw)
	if got := dw.deadlines(); dw.Code != http.StatusOK || len(got) != 2 || !got[0].After(began) || !got[1].IsZero() {
		t.Errorf("HTTP/1.1: %d, read deadlines %v, want one ahead, then cleared", dw.Code, got)
	}
}

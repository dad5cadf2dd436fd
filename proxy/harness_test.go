package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/odoh"
)

// recorded is what a recording target saw of one request.
type recorded struct {
	method, host, path, rawQuery, proto string
	header                              http.Header
	body                                []byte
	remote                              string
}

// recordingTarget is a TLS server on 127.0.0.1 (HTTP/2 on TCP, HTTP/3 on
// UDP) that records every request and answers with respond.
type recordingTarget struct {
	srv  *httpserve.Server
	port int
	mu   sync.Mutex
	reqs []recorded
	// respond answers a request; nil means an ODoH-typed echo of the body.
	respond atomic.Pointer[func(w http.ResponseWriter, r *http.Request, body []byte)]
}

func startTarget(t testing.TB, tlsConfig *tls.Config) *recordingTarget {
	t.Helper()
	return startTargetOpts(t, tlsConfig, false)
}

// startTargetOpts is startTarget, serving HTTP/2 only with noHTTP3.
func startTargetOpts(t testing.TB, tlsConfig *tls.Config, noHTTP3 bool) *recordingTarget {
	t.Helper()
	rt := &recordingTarget{}
	rt.srv = &httpserve.Server{
		Addr:         "127.0.0.1:0",
		DisableHTTP3: noHTTP3,
		TLSConfig:    tlsConfig,
		Logger:       slog.New(slog.DiscardHandler),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rt.mu.Lock()
			rt.reqs = append(rt.reqs, recorded{
				method: r.Method, host: r.Host, path: r.URL.Path, rawQuery: r.URL.RawQuery,
				proto: r.Proto, header: r.Header.Clone(), body: body, remote: r.RemoteAddr,
			})
			rt.mu.Unlock()
			if f := rt.respond.Load(); f != nil {
				(*f)(w, r, body)
				return
			}
			w.Header().Set("Content-Type", odoh.ContentType)
			_, _ = w.Write(body)
		}),
	}
	if err := rt.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	rt.port = rt.srv.TCPAddr().Port
	go func() { _ = rt.srv.Serve(context.Background()) }()
	t.Cleanup(func() { _ = rt.srv.Close() })
	return rt
}

func (rt *recordingTarget) setRespond(f func(w http.ResponseWriter, r *http.Request, body []byte)) {
	rt.respond.Store(&f)
}

func (rt *recordingTarget) requests() []recorded {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]recorded(nil), rt.reqs...)
}

func (rt *recordingTarget) hostPort() string { return "127.0.0.1:" + strconv.Itoa(rt.port) }

// testProxy is a Handler served over h2 and h3 on 127.0.0.1.
type testProxy struct {
	h    *Handler
	srv  *httpserve.Server
	base string // https://127.0.0.1:PORT
	h2   *http.Client
	h3   *http.Client
	reg  *prometheus.Registry
	logs *testlog.Buffer
}

func startProxy(t testing.TB, ca *testca.CA, cfg Config) *testProxy {
	t.Helper()
	return startProxyServer(t, ca, cfg, nil)
}

// startProxyServer is startProxy with a say in the server's settings.
func startProxyServer(t testing.TB, ca *testca.CA, cfg Config, server func(*httpserve.Server)) *testProxy {
	t.Helper()
	tp := &testProxy{reg: prometheus.NewRegistry(), logs: &testlog.Buffer{}}
	if cfg.RootCAs == nil {
		cfg.RootCAs = ca.Pool()
	}
	if cfg.Resolver == nil {
		cfg.Resolver = noResolver()
	}
	m, err := metrics.NewProxy(tp.reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	cfg.Logger = slog.New(slog.NewTextHandler(tp.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	tp.h = h
	tp.srv = &httpserve.Server{Addr: "127.0.0.1:0", Handler: h, TLSConfig: ca.ServerTLS(t), Logger: slog.New(slog.DiscardHandler)}
	if server != nil {
		server(tp.srv)
	}
	if err := tp.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = tp.srv.Serve(context.Background()) }()
	t.Cleanup(func() { _ = tp.srv.Close() })
	tp.base = "https://" + tp.srv.BoundAddr()
	tr := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	tp.h2 = &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h3 := &http3.Transport{TLSClientConfig: ca.ClientTLS()}
	t.Cleanup(func() { _ = h3.Close() })
	tp.h3 = &http.Client{Transport: h3, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return tp
}

// noResolver fails every lookup without touching the network: tests never
// use the system resolver.
func noResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "udp", Err: errNoDNS{}}
	}}
}

type errNoDNS struct{}

func (errNoDNS) Error() string { return "no DNS in this test" }

// queryURL is the proxy URL for a target in the RFC 6570 form.
func (tp *testProxy) queryURL(targethost, targetpath string) string {
	return tp.base + "/dns-query?targethost=" + targethost + "&targetpath=" + targetpath
}

// post sends an ODoH-typed POST with body to rawURL over client c.
func post(t *testing.T, c *http.Client, rawURL string, body []byte, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", odoh.ContentType)
	req.Header.Set("Accept", odoh.ContentType)
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// relayed is the kind wantProxyStatus expects of a response the target
// sent: no error, its status as received-status.
const relayed odoh.ProxyError = ""

// wantProxyStatus checks the status and the Proxy-Status header: one member,
// the proxy's, with error type kind, or (kind relayed) with received-status
// equal to status and no error.
func wantProxyStatus(t *testing.T, resp *http.Response, status int, kind odoh.ProxyError) {
	t.Helper()
	field := resp.Header.Get("Proxy-Status")
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (Proxy-Status %q)", resp.StatusCode, status, field)
	}
	ms, err := odoh.ParseProxyStatus(field)
	switch {
	case err != nil || len(ms) != 1 || ms[0].Name != DefaultName:
		t.Errorf("Proxy-Status %q: members %+v, %v; want one of %s", field, ms, err, DefaultName)
	case kind == relayed && (ms[0].Error != "" || ms[0].ReceivedStatus != status):
		t.Errorf("Proxy-Status %q, want received-status=%d and no error", field, status)
	case kind != relayed && ms[0].Error != kind:
		t.Errorf("Proxy-Status %q, want error=%s", field, kind)
	}
	if cc := resp.Header.Get("Cache-Control"); cc == "" {
		t.Errorf("no Cache-Control on a %d", resp.StatusCode)
	}
}

// dnsServer answers A/AAAA queries on 127.0.0.1 from a fixed map; names
// not in it get NXDOMAIN, and "slow." names are never answered.
func dnsServer(t *testing.T, names map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.ToLower(q.Question[0].Name)
		if strings.HasPrefix(name, "slow.") {
			return
		}
		a, ok := names[strings.TrimSuffix(name, ".")]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA && a.Is4():
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
		case q.Question[0].Qtype == dns.TypeAAAA && a.Is6():
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: a.AsSlice()})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/tlshello"
)

// tunnelProtos are the three ways a client can send CONNECT.
var tunnelProtos = []string{"h1", "h2", "h3"}

// tunnelResp is the answer to a CONNECT: the status, Proxy-Status, and
// the stream when it is 200.
type tunnelResp struct {
	status      int
	proxyStatus string
	conn        io.ReadWriteCloser
}

// connect sends CONNECT authority to the proxy over proto, as a client
// other than the proxy's own would (a raw HTTP/1.1 request, or a stream
// on an HTTP/2 or HTTP/3 connection).
func connect(t *testing.T, ca *testca.CA, tp *testProxy, proto, authority string) tunnelResp {
	t.Helper()
	if proto == "h1" {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(tp.base, "https://"), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			conn.Close()
			return tunnelResp{resp.StatusCode, resp.Header.Get("Proxy-Status"), nil}
		}
		return tunnelResp{resp.StatusCode, "", &bufConn{Conn: conn, r: br}}
	}
	rt := tp.h2.Transport
	if proto == "h3" {
		rt = tp.h3.Transport
	}
	pr, pw := io.Pipe()
	u, _ := url.Parse(tp.base)
	req := &http.Request{Method: http.MethodConnect, URL: u, Host: authority, Header: http.Header{}, Body: pr}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		pw.Close()
		return tunnelResp{resp.StatusCode, resp.Header.Get("Proxy-Status"), nil}
	}
	return tunnelResp{resp.StatusCode, "", &pipeConn{r: resp.Body, w: pw}}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type pipeConn struct {
	r io.ReadCloser
	w *io.PipeWriter
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *pipeConn) Close() error                { c.w.Close(); return c.r.Close() }

// rawConn lets crypto/tls run over a tunnel stream.
type rawConn struct{ io.ReadWriteCloser }

func (rawConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (rawConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (rawConn) SetDeadline(time.Time) error      { return nil }
func (rawConn) SetReadDeadline(time.Time) error  { return nil }
func (rawConn) SetWriteDeadline(time.Time) error { return nil }

// tunnelCounts reads odoh_proxy_tunnels_total by result.
func tunnelCounts(t *testing.T, tp *testProxy) map[string]float64 {
	t.Helper()
	mfs, err := tp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "odoh_proxy_tunnels_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return counts
}

// Through the tunnel the client speaks TLS with the target itself: the
// proxy relays bytes it cannot read, the target sees the proxy's
// connection. Over HTTP/1.1, HTTP/2 and HTTP/3, and never logged.
func TestTunnel(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	tgt.setRespond(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		_, _ = io.WriteString(w, "configs of "+r.Host)
	})
	tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{tgt.hostPort()}}})
	for i, proto := range tunnelProtos {
		t.Run(proto, func(t *testing.T) {
			tr := connect(t, ca, tp, proto, tgt.hostPort())
			if tr.status != http.StatusOK {
				t.Fatalf("CONNECT: %d %s", tr.status, tr.proxyStatus)
			}
			tc := tls.Client(rawConn{tr.conn}, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
			defer tc.Close()
			req, _ := http.NewRequest(http.MethodGet, "https://"+tgt.hostPort()+"/.well-known/odohconfigs", nil)
			req.Close = true
			if err := req.Write(tc); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(tc), req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != "configs of "+tgt.hostPort() {
				t.Fatalf("through the tunnel: %d %q", resp.StatusCode, body)
			}
			reqs := tgt.requests()
			if len(reqs) != i+1 || reqs[i].proto != "HTTP/1.1" || reqs[i].path != "/.well-known/odohconfigs" {
				t.Fatalf("target saw %+v", reqs)
			}
		})
	}
	if c := tunnelCounts(t, tp); c["opened"] != 3 {
		t.Errorf("tunnels_total = %v, want 3 opened", c)
	}
	if tp.logs.String() != "" {
		t.Errorf("tunnels were logged: %s", tp.logs.String())
	}
}

// The tunnel goes only where a forwarded query may: an allowlisted
// target's own port, never an address that a name resolves to behind the
// policy's back. Each refusal names its cause in Proxy-Status, and none
// connects anywhere.
func TestTunnelRefusals(t *testing.T) {
	ca := testca.New(t)
	tgt := startTarget(t, ca.ServerTLS(t))
	resolver := dnsServer(t, map[string]netip.Addr{
		"internal.example": netip.MustParseAddr("127.0.0.1"),
	})
	internal := "internal.example:" + strconv.Itoa(tgt.port)
	tp := startProxy(t, ca, Config{Resolver: resolver, Policy: Policy{Allow: []string{tgt.hostPort(), internal}}})
	otherPort := "127.0.0.1:" + strconv.Itoa(tgt.port+1)
	testCases := []struct {
		name, authority string
		status          int
		kind            string
	}{
		{"host not allowlisted", "odoh.example.net:443", http.StatusForbidden, "http_request_denied"},
		{"wrong port", otherPort, http.StatusForbidden, "http_request_denied"},
		{"default port of an entry with another", "127.0.0.1:443", http.StatusForbidden, "http_request_denied"},
		{"private address after resolution", internal, http.StatusForbidden, "destination_ip_prohibited"},
		{"no port", "127.0.0.1", http.StatusBadRequest, "http_request_error"},
		{"numeric trick", "127.1:" + strconv.Itoa(tgt.port), http.StatusBadRequest, "http_request_error"},
	}
	for _, proto := range tunnelProtos {
		for _, tc := range testCases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				tr := connect(t, ca, tp, proto, tc.authority)
				if tr.status != tc.status || !strings.HasPrefix(tr.proxyStatus, "odoh-proxy; error="+tc.kind) {
					t.Fatalf("CONNECT %s: %d %q, want %d %s", tc.authority, tr.status, tr.proxyStatus, tc.status, tc.kind)
				}
			})
		}
	}
	if n := len(tgt.requests()); n != 0 {
		t.Errorf("target saw %d requests", n)
	}
	c := tunnelCounts(t, tp)
	if c["opened"] != 0 || c["denied"] != 4*3 || c["refused"] != 2*3 {
		t.Errorf("tunnels_total = %v", c)
	}

	// Tunnels switched off: 405, as at a relay that knows no CONNECT.
	off := startProxy(t, ca, Config{DisableTunnel: true, Policy: Policy{Allow: []string{tgt.hostPort()}}})
	for _, proto := range tunnelProtos {
		if tr := connect(t, ca, off, proto, tgt.hostPort()); tr.status != http.StatusMethodNotAllowed {
			t.Errorf("%s: disabled tunnel answered %d", proto, tr.status)
		}
	}
}

// tcpSink accepts TCP connections on loopback and hands each to serve.
func tcpSink(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// A tunnel carries at most TunnelMaxBytes, lives at most TunnelTimeout,
// and carries TLS only; each limit cuts it.
func TestTunnelLimits(t *testing.T) {
	ca := testca.New(t)
	var received atomic.Int64
	echo := tcpSink(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	silent := tcpSink(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); c.Close() })
	echoAddr, silentAddr := "127.0.0.1:"+strconv.Itoa(echo), "127.0.0.1:"+strconv.Itoa(silent)
	echoName := "echo.example:" + strconv.Itoa(echo)
	const maxBytes = 8 << 10
	tp := startProxy(t, ca, Config{
		Policy:         Policy{Allow: []string{echoAddr, silentAddr, echoName}, AllowSpecialAddrs: true},
		Resolver:       dnsServer(t, map[string]netip.Addr{"echo.example": netip.MustParseAddr("127.0.0.1")}),
		TunnelMaxBytes: maxBytes,
		TunnelTimeout:  time.Second,
	})
	hello := clientHello(t, "") // for an IP literal: no server name
	junk := bytes.Repeat([]byte{'x'}, 1024)
	cuts := 0.0
	// Each tunnel below is cut by its limit, counted before the client
	// sees it end.
	wantCut := func(t *testing.T) {
		t.Helper()
		cuts++
		if c := tunnelCounts(t, tp); c["cut"] != cuts {
			t.Errorf("tunnels_total = %v, want %v cut", c, cuts)
			cuts = c["cut"]
		}
	}
	for _, proto := range tunnelProtos {
		t.Run(proto+"/bytes", func(t *testing.T) {
			tr := connect(t, ca, tp, proto, echoAddr)
			if tr.status != http.StatusOK {
				t.Fatalf("CONNECT: %d %s", tr.status, tr.proxyStatus)
			}
			defer tr.conn.Close()
			go func() {
				if _, err := tr.conn.Write(hello); err != nil {
					return
				}
				for range 64 { // 64 KiB, far past the limit
					if _, err := tr.conn.Write(junk); err != nil {
						return
					}
				}
			}()
			// Echoed bytes passed twice: at most half the limit come back
			// (without it, all 64 KiB would, within the time limit).
			if n, _ := io.Copy(io.Discard, tr.conn); n > maxBytes/2 {
				t.Fatalf("echoed %d bytes, limit %d both ways", n, maxBytes)
			}
			wantCut(t)
		})
		t.Run(proto+"/time", func(t *testing.T) {
			tr := connect(t, ca, tp, proto, silentAddr)
			if tr.status != http.StatusOK {
				t.Fatalf("CONNECT: %d %s", tr.status, tr.proxyStatus)
			}
			defer tr.conn.Close()
			if _, err := tr.conn.Write(hello[:1]); err != nil {
				t.Fatal(err)
			}
			// The target never answers and the client never closes: only
			// the proxy's TunnelTimeout can end the stream.
			done := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, tr.conn); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("the tunnel outlived its timeout")
			}
			wantCut(t)
		})
		t.Run(proto+"/not TLS", func(t *testing.T) {
			before := received.Load()
			tr := connect(t, ca, tp, proto, echoAddr)
			if tr.status != http.StatusOK {
				t.Fatalf("CONNECT: %d %s", tr.status, tr.proxyStatus)
			}
			defer tr.conn.Close()
			if _, err := io.WriteString(tr.conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if n, _ := io.Copy(io.Discard, tr.conn); n != 0 {
				t.Errorf("plaintext tunnel echoed %d bytes", n)
			}
			if got := received.Load() - before; got != 0 {
				t.Errorf("the target received %d bytes of plaintext", got)
			}
			wantCut(t)
		})
	}
	if c := tunnelCounts(t, tp); c["opened"] != 9 {
		t.Errorf("tunnels_total = %v, want 9 opened", c)
	}
}

// clientHello is the first record crypto/tls sends for serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		_ = tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""}).Handshake()
		_ = c.Close()
	}()
	rec, _, err := tlshello.Read(s)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A tunnel carries a TLS session with the target it was opened to: its
// ClientHello names that target (case aside), or nothing for an IP
// literal. A session with another name that the address serves (a CDN's
// other sites) is cut before a byte reaches it.
func TestTunnelServerName(t *testing.T) {
	ca := testca.New(t)
	var received atomic.Int64
	echo := tcpSink(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n)) // before the echo: counted by the time the client reads it
			if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
				return
			}
		}
	})
	byAddr, byName := "127.0.0.1:"+strconv.Itoa(echo), "echo.example:"+strconv.Itoa(echo)
	tp := startProxy(t, ca, Config{
		Policy:   Policy{Allow: []string{byAddr, byName}, AllowSpecialAddrs: true},
		Resolver: dnsServer(t, map[string]netip.Addr{"echo.example": netip.MustParseAddr("127.0.0.1")}),
	})
	cuts := 0.0
	for _, proto := range tunnelProtos {
		for _, tc := range []struct {
			name, authority, serverName string
			ok                          bool
		}{
			{"name", byName, "echo.example", true},
			{"name in other case", byName, "Echo.EXAMPLE", true},
			{"another name", byName, "other.example", false},
			{"no name for a name", byName, "", false},
			{"no name for an address", byAddr, "", true},
			{"a name for an address", byAddr, "echo.example", false},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				hello := clientHello(t, tc.serverName)
				before := received.Load()
				tr := connect(t, ca, tp, proto, tc.authority)
				if tr.status != http.StatusOK {
					t.Fatalf("CONNECT: %d %s", tr.status, tr.proxyStatus)
				}
				if _, err := tr.conn.Write(hello); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(hello))
				_, err := io.ReadFull(tr.conn, got)
				tr.conn.Close()
				if tc.ok {
					if err != nil || !bytes.Equal(got, hello) {
						t.Fatalf("hello not echoed: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("a hello for another name went through")
				}
				cuts++
				if c := tunnelCounts(t, tp); c["cut"] != cuts {
					t.Errorf("tunnels_total = %v, want %v cut", c, cuts)
					cuts = c["cut"]
				}
				if n := received.Load() - before; n != 0 {
					t.Errorf("the target received %d bytes", n)
				}
			})
		}
	}
}

// Tunnels are counted per client and over all clients; past either cap,
// 429 until one closes.
func TestTunnelCounts(t *testing.T) {
	ca := testca.New(t)
	hold := tcpSink(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); c.Close() })
	addr := "127.0.0.1:" + strconv.Itoa(hold)
	testCases := []struct {
		name             string
		perClient, total int
	}{
		{"per client", 2, 100},
		{"overall", 100, 2},
	}
	for _, tc := range testCases {
		for _, proto := range tunnelProtos {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				tp := startProxy(t, ca, Config{Policy: Policy{Allow: []string{addr}},
					MaxTunnelsPerClient: tc.perClient, MaxTunnels: tc.total})
				var open []io.ReadWriteCloser
				for range 2 {
					tr := connect(t, ca, tp, proto, addr)
					if tr.status != http.StatusOK {
						t.Fatalf("CONNECT within the cap: %d %s", tr.status, tr.proxyStatus)
					}
					open = append(open, tr.conn)
				}
				tr := connect(t, ca, tp, proto, addr)
				if tr.status != http.StatusTooManyRequests || !strings.HasPrefix(tr.proxyStatus, "odoh-proxy; error=http_request_denied") {
					t.Fatalf("CONNECT past the cap: %d %q", tr.status, tr.proxyStatus)
				}
				// Closing one frees its slot (once the proxy has seen it go).
				open[0].Close()
				for {
					tr = connect(t, ca, tp, proto, addr)
					if tr.status == http.StatusOK {
						tr.conn.Close()
						break
					}
					if tr.status != http.StatusTooManyRequests {
						t.Fatalf("CONNECT after a close: %d", tr.status)
					}
					time.Sleep(10 * time.Millisecond)
				}
				open[1].Close()
				if c := tunnelCounts(t, tp); c["rate_limited"] < 1 || c["opened"] != 3 {
					t.Errorf("tunnels_total = %v", c)
				}
			})
		}
	}
}

// An open relay's tunnel still refuses special addresses, given as
// literals or reached through a name, whatever the port's rule allows.
func TestTunnelOpenRelayRefusesSpecialAddrs(t *testing.T) {
	ca := testca.New(t)
	resolver := dnsServer(t, map[string]netip.Addr{
		"rebind.example":   netip.MustParseAddr("192.168.1.1"),
		"metadata.example": netip.MustParseAddr("169.254.169.254"),
	})
	tp := startProxy(t, ca, Config{Resolver: resolver, Policy: Policy{AllowOpen: true}})
	for _, proto := range tunnelProtos {
		for _, authority := range []string{"127.0.0.1:443", "[::1]:443", "10.0.0.1:443", "169.254.169.254:443",
			"[::ffff:127.0.0.1]:443", "[fe80::1]:443", "rebind.example:443", "metadata.example:443"} {
			t.Run(proto+"/"+authority, func(t *testing.T) {
				tr := connect(t, ca, tp, proto, authority)
				if tr.status != http.StatusForbidden || !strings.HasPrefix(tr.proxyStatus, "odoh-proxy; error=destination_ip_prohibited") {
					t.Fatalf("CONNECT %s: %d %q, want 403 destination_ip_prohibited", authority, tr.status, tr.proxyStatus)
				}
			})
		}
	}
	if c := tunnelCounts(t, tp); c["opened"] != 0 {
		t.Errorf("tunnels_total = %v", c)
	}
}

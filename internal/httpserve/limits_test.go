package httpserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testh2"
)

// from returns a dialer whose connections come from the loopback address
// ip (all of 127.0.0.0/8 is the loopback interface on Linux).
func from(ip string) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
}

// h2From opens an HTTP/2 connection from ip and makes one request on it;
// it returns the connection's client, or the error of either step.
func h2From(t *testing.T, ca *testca.CA, addr, ip string) (*http.ClientConn, error) {
	t.Helper()
	cc, err := newH2Conn(t, ca.ClientTLS(), addr, ip)
	if err != nil {
		return nil, err
	}
	return cc, h2Get(cc, addr)
}

// newH2Conn opens one HTTP/2 connection to addr from the address ip.
func newH2Conn(t *testing.T, conf *tls.Config, addr, ip string) (*http.ClientConn, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: conf, DialContext: from(ip).DialContext, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	cc, err := tr.NewClientConn(t.Context(), "https", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cc.Close() })
	return cc, nil
}

func h2Get(cc *http.ClientConn, addr string) error {
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// h3From opens a QUIC connection from ip and makes one request on it.
func h3From(t *testing.T, ca *testca.CA, addr, ip string) (*http3.ClientConn, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	raddr, _ := net.ResolveUDPAddr("udp", addr)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	qc, err := tr.Dial(ctx, raddr, http3.ConfigureTLSConfig(ca.ClientTLS()), &quic.Config{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	cc := (&http3.Transport{}).NewClientConn(qc)
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return cc, nil
}

// TestConnCapPerClient: one address gets MaxConnsPerClient connections,
// TCP and QUIC counted together; the next one from that address is
// refused before TLS, while another address still connects and the first
// address's connections keep their service.
func TestConnCapPerClient(t *testing.T) {
	ca := testca.New(t)
	m := &connMetrics{}
	st := start(t, ca, protoHandler(), func(s *Server) { s.MaxConnsPerClient = 3; s.Metrics = m })
	addr := st.srv.BoundAddr()

	var held []*http.ClientConn
	for i := range 2 {
		cc, err := h2From(t, ca, addr, "127.0.0.1")
		if err != nil {
			t.Fatalf("TCP connection %d: %v", i+1, err)
		}
		held = append(held, cc)
	}
	h3cc, err := h3From(t, ca, addr, "127.0.0.1")
	if err != nil {
		t.Fatalf("QUIC connection 3: %v", err)
	}
	if _, err := h2From(t, ca, addr, "127.0.0.1"); err == nil {
		t.Fatal("4th connection (TCP) from 127.0.0.1 accepted, want refused")
	}
	if _, err := h3From(t, ca, addr, "127.0.0.1"); err == nil {
		t.Fatal("4th connection (QUIC) from 127.0.0.1 accepted, want refused")
	} else if te, ok := errors.AsType[*quic.TransportError](err); !ok || te.ErrorCode != quic.ConnectionRefused {
		t.Errorf("QUIC refusal: %v, want CONNECTION_REFUSED", err)
	}
	if _, err := h2From(t, ca, addr, "127.0.0.2"); err != nil {
		t.Errorf("TCP from 127.0.0.2 while 127.0.0.1 is at its cap: %v", err)
	}
	if _, err := h3From(t, ca, addr, "127.0.0.2"); err != nil {
		t.Errorf("QUIC from 127.0.0.2 while 127.0.0.1 is at its cap: %v", err)
	}
	for i, cc := range held {
		if err := h2Get(cc, addr); err != nil {
			t.Errorf("held TCP connection %d lost its service: %v", i+1, err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if resp, err := h3cc.RoundTrip(req); err != nil {
		t.Errorf("held QUIC connection lost its service: %v", err)
	} else {
		resp.Body.Close()
	}
	// (A refused QUIC client retransmits its Initial: each is refused.)
	if s := st.srv.ConnStats(); s.RefusedClient < 2 || s.RefusedTotal != 0 || s.Open != 5 {
		t.Errorf("stats %+v, want 5 open and 2 or more refused by the per-client cap", s)
	}
	if n := m.count("refused max_conns_per_client"); n < 2 || m.count("refused max_conns") != 0 {
		t.Errorf("%d per-client refusals counted, want 2 or more, none for max_conns", n)
	}

	// A closed connection gives its slot back.
	held[0].Close()
	waitUntil(t, func() bool { _, err := h2From(t, ca, addr, "127.0.0.1"); return err == nil })
}

// TestConnCapOverall: past MaxConns nobody connects, whatever address.
func TestConnCapOverall(t *testing.T) {
	ca := testca.New(t)
	m := &connMetrics{}
	st := start(t, ca, protoHandler(), func(s *Server) { s.MaxConns = 2; s.Metrics = m })
	addr := st.srv.BoundAddr()
	if _, err := h2From(t, ca, addr, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h3From(t, ca, addr, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := h2From(t, ca, addr, "127.0.0.3"); err == nil {
		t.Error("3rd connection accepted over MaxConns 2")
	}
	if _, err := h3From(t, ca, addr, "127.0.0.4"); err == nil {
		t.Error("3rd QUIC connection accepted over MaxConns 2")
	}
	if s := st.srv.ConnStats(); s.Open != 2 || s.RefusedTotal < 2 || s.RefusedClient != 0 {
		t.Errorf("stats %+v", s)
	}
	if n := m.count("refused max_conns"); n < 2 || m.count("refused max_conns_per_client") != 0 {
		t.Errorf("%d refusals for max_conns counted, want 2 or more, none per client", n)
	}
}

// connMetrics records what a Server reports, by kind and reason.
type connMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *connMetrics) add(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = make(map[string]int)
	}
	m.n[key]++
}

func (m *connMetrics) ConnRefused(reason string) { m.add("refused " + reason) }
func (m *connMetrics) ConnClosed(reason string)  { m.add("closed " + reason) }

func (m *connMetrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[key]
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResetBudgetHTTP2: a handler that refuses every request at once (a
// relay's 429) never lets net/http's own early-reset cap see a queue; the
// reset budget closes the connection with GOAWAY.
func TestResetBudgetHTTP2(t *testing.T) {
	ca := testca.New(t)
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		CountRefused(r)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	m := &connMetrics{}
	st := start(t, ca, refuse, func(s *Server) { s.ResetBudget = 50; s.Metrics = m })
	addr := st.srv.BoundAddr()
	ga := testh2.Dial(t, addr, ca.ClientTLS()).RapidReset(t, addr, "/", 5000, 20*time.Second)
	if ga == nil {
		t.Fatal("connection closed without GOAWAY")
	}
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID > 2*5000 {
		t.Errorf("GOAWAY %v last stream %d", ga.ErrCode, ga.LastStreamID)
	}
	if n := m.count("closed reset_budget"); n != 1 {
		t.Errorf("%d closes for the reset budget counted, want 1", n)
	}
}

// TestResetBudgetHTTP3: over HTTP/3 the connection is closed with
// H3_EXCESSIVE_LOAD once its refused streams pass the budget.
func TestResetBudgetHTTP3(t *testing.T) {
	ca := testca.New(t)
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		CountRefused(r)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	m := &connMetrics{}
	st := start(t, ca, refuse, func(s *Server) { s.ResetBudget = 20; s.Metrics = m })
	addr := st.srv.BoundAddr()
	udp, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer udp.Close()
	raddr, _ := net.ResolveUDPAddr("udp", addr)
	qc, err := (&quic.Transport{Conn: udp}).Dial(t.Context(), raddr, http3.ConfigureTLSConfig(ca.ClientTLS()), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cc := (&http3.Transport{}).NewClientConn(qc)
	var lastErr error
	for i := range 100 {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			lastErr = err
			if i < 20 {
				t.Fatalf("request %d failed within the budget: %v", i, err)
			}
			break
		}
		resp.Body.Close()
	}
	if lastErr == nil {
		t.Fatal("100 refused requests on one connection, never closed")
	}
	<-qc.Context().Done()
	ae, ok := errors.AsType[*quic.ApplicationError](context.Cause(qc.Context()))
	if !ok || ae.ErrorCode != quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad) || !ae.Remote {
		t.Errorf("closed with %v, want H3_EXCESSIVE_LOAD from the server", context.Cause(qc.Context()))
	}
	if n := m.count("closed reset_budget"); n != 1 {
		t.Errorf("%d closes for the reset budget counted, want 1", n)
	}
}

// TestAnsweredStreamsRefillBudget: a connection whose refused streams are
// outnumbered by answered ones is never closed.
func TestAnsweredStreamsRefillBudget(t *testing.T) {
	ca := testca.New(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			CountRefused(r)
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	m := &connMetrics{}
	st := start(t, ca, h, func(s *Server) { s.ResetBudget = 5; s.Metrics = m })
	addr := st.srv.BoundAddr()
	cc, err := h2From(t, ca, addr, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		path := "/"
		if i%2 == 1 {
			path = "/refuse"
		}
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.Header.Get("Connection") != "" || cc.Err() != nil {
			t.Fatalf("request %d: connection closing", i)
		}
	}
	if n := m.count("closed reset_budget") + m.count("closed late_body"); n != 0 {
		t.Errorf("%d connections counted as closed, want none", n)
	}
}

// TestBodyTimeoutClosesHTTP1: a body that misses ReadTimeout gets its
// answer and then the end of the connection, not a connection held open.
func TestBodyTimeoutClosesHTTP1(t *testing.T) {
	ca := testca.New(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			// Clear the deadline, as a handler that goes on may: the
			// connection must close all the same.
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
			return
		}
	})
	m := &connMetrics{}
	st := start(t, ca, h, func(s *Server) { s.ReadTimeout = time.Hour; s.Metrics = m })
	conf := ca.ClientTLS()
	conf.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", st.srv.BoundAddr(), conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten..")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("answer %s, Connection: %q; want 408 and close", resp.Status, resp.Header.Get("Connection"))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want the connection closed (EOF)", err)
	}
	if n := m.count("closed late_body"); n != 1 {
		t.Errorf("%d closes for a late body counted, want 1", n)
	}
}

// TestBodyTimeoutClosesHTTP2: on HTTP/2 the stream's answer comes with a
// GOAWAY, and the connection closes.
func TestBodyTimeoutClosesHTTP2(t *testing.T) {
	ca := testca.New(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
		}
	})
	m := &connMetrics{}
	st := start(t, ca, h, func(s *Server) { s.ReadTimeout = 300 * time.Millisecond; s.IdleTimeout = time.Hour; s.Metrics = m })
	addr := st.srv.BoundAddr()
	fc := testh2.Dial(t, addr, ca.ClientTLS())
	if err := fc.Post(1, addr, "/", 100, false); err != nil {
		t.Fatal(err)
	}
	if err := fc.Framer.WriteData(1, false, []byte("part")); err != nil {
		t.Fatal(err)
	}
	ga := fc.Frames(t, 20*time.Second, nil)
	if ga == nil || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v", ga)
	}
	fc.WaitClosed(t, 20*time.Second, nil)
	if n := m.count("closed late_body"); n != 1 {
		t.Errorf("%d closes for a late body counted, want 1", n)
	}
}

// TestMaxRequests: past the cap of requests in progress a request gets
// 503 at once; the others are not disturbed.
func TestMaxRequests(t *testing.T) {
	ca := testca.New(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
	})
	st := start(t, ca, h, func(s *Server) { s.MaxRequests = 2 })
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := st.h2.Get(st.url + "hold")
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-entered
	<-entered
	resp, body := get(t, st.h3, st.url)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "busy") {
		t.Errorf("3rd request: %s %q", resp.Status, body)
	}
	close(release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held request: %d", code)
		}
	}
	if resp, _ := get(t, st.h2, st.url); resp.StatusCode != http.StatusOK {
		t.Errorf("after: %s", resp.Status)
	}
}

// TestHandshakeTimeoutFreesSlot: a connection that never completes its TLS
// handshake, or whose HTTP/1.1 header block never ends (slowloris), holds
// its address's one connection slot only until ReadHeaderTimeout (the read
// and idle timeouts are an hour): the server closes it, and the address
// connects again. (That the slot refuses a second connection meanwhile is
// TestConnCapPerClient's.)
func TestHandshakeTimeoutFreesSlot(t *testing.T) {
	ca := testca.New(t)
	st := start(t, ca, protoHandler(), func(s *Server) {
		s.MaxConnsPerClient = 1
		s.ReadHeaderTimeout = 300 * time.Millisecond
		s.ReadTimeout, s.IdleTimeout = time.Hour, time.Hour // only the header timeout can close
	})
	addr := st.srv.BoundAddr()
	conf := ca.ClientTLS()
	conf.NextProtos = []string{"http/1.1"}
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"silent before TLS", func() (net.Conn, error) { return from("127.0.0.1").Dial("tcp", addr) }},
		{"header block never ends", func() (net.Conn, error) {
			c, err := tls.DialWithDialer(from("127.0.0.1"), "tcp", addr, conf)
			if err == nil {
				_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
			}
			return c, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c net.Conn
			waitUntil(t, func() bool { // the previous case's slot comes back
				var err error
				c, err = tc.dial()
				return err == nil
			})
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // a guard against a hang
			if n, err := c.Read(make([]byte, 1024)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %d bytes, %v; want the server to close the connection", n, err)
			}
			waitUntil(t, func() bool { _, err := h2From(t, ca, addr, "127.0.0.1"); return err == nil })
		})
	}
}

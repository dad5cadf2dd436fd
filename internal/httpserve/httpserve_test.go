package httpserve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/internal/testca"
)

type stack struct {
	srv    *Server
	served chan error
	cancel context.CancelFunc // Serve's context
	h2     *http.Client
	h3     *http.Client
	url    string
}

func start(t *testing.T, ca *testca.CA, h http.Handler, mutate func(*Server)) *stack {
	t.Helper()
	srv := &Server{
		Addr:      "127.0.0.1:0",
		Handler:   h,
		TLSConfig: ca.ServerTLS(t),
		Logger:    slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(srv)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	st := &stack{srv: srv, served: make(chan error, 1), cancel: cancel, url: "https://" + srv.BoundAddr() + "/"}
	go func() { st.served <- srv.Serve(ctx) }()

	h2t := &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}
	// Generous timeouts: they guard against a hang, they assert nothing.
	// On a loaded machine (CI, the race detector) concurrent HTTP/3
	// handshakes outlasted quic-go's 5 s handshake default and 10 s ones.
	h3t := &http3.Transport{TLSClientConfig: ca.ClientTLS(), QUICConfig: &quic.Config{HandshakeIdleTimeout: time.Minute}}
	t.Cleanup(func() {
		h2t.CloseIdleConnections()
		_ = h3t.Close()
		_ = srv.Close()
	})
	st.h2 = &http.Client{Transport: h2t, Timeout: 2 * time.Minute}
	st.h3 = &http.Client{Transport: h3t, Timeout: 2 * time.Minute}
	return st
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func protoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	})
}

func TestH2AndH3OnOnePort(t *testing.T) {
	ca := testca.New(t)
	st := start(t, ca, protoHandler(), nil)

	tcp, udp := st.srv.TCPAddr(), st.srv.UDPAddr()
	if tcp.Port == 0 || tcp.Port != udp.Port {
		t.Fatalf("TCP port %d, UDP port %d", tcp.Port, udp.Port)
	}

	resp, body := get(t, st.h2, st.url)
	if resp.ProtoMajor != 2 || body != "HTTP/2.0" {
		t.Errorf("TCP: response proto %s, handler saw %q", resp.Proto, body)
	}
	wantAltSvc := fmt.Sprintf(`h3=":%d"; ma=86400`, tcp.Port)
	if got := resp.Header.Get("Alt-Svc"); got != wantAltSvc {
		t.Errorf("TCP Alt-Svc = %q, want %q", got, wantAltSvc)
	}

	resp, body = get(t, st.h3, st.url)
	if resp.ProtoMajor != 3 || body != "HTTP/3.0" {
		t.Errorf("UDP: response proto %s, handler saw %q", resp.Proto, body)
	}
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("HTTP/3 response carries Alt-Svc %q", got)
	}

	// HTTP/1.1 still works on TCP.
	h1 := &http.Client{Transport: &http.Transport{
		TLSClientConfig: ca.ClientTLS(),
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	resp, body = get(t, h1, st.url)
	if body != "HTTP/1.1" || resp.Header.Get("Alt-Svc") != wantAltSvc {
		t.Errorf("HTTP/1.1: handler saw %q, Alt-Svc %q", body, resp.Header.Get("Alt-Svc"))
	}

	if err := st.srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-st.served; err != nil {
		t.Fatalf("Serve returned %v after Shutdown", err)
	}
}

func TestDisableHTTP3(t *testing.T) {
	ca := testca.New(t)
	st := start(t, ca, protoHandler(), func(s *Server) { s.DisableHTTP3 = true })
	if st.srv.UDPAddr() != nil {
		t.Fatal("UDP socket bound with DisableHTTP3")
	}
	resp, _ := get(t, st.h2, st.url)
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("Alt-Svc = %q with HTTP/3 disabled", got)
	}
}

func TestShutdownDrainsBothProtocols(t *testing.T) {
	ca := testca.New(t)
	entered := make(chan string, 2)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.Proto
		<-release
		fmt.Fprint(w, "done "+r.Proto)
	})
	st := start(t, ca, h, nil)

	type result struct {
		body string
		err  error
	}
	results := make(chan result, 2)
	for _, c := range []*http.Client{st.h2, st.h3} {
		go func() {
			resp, err := c.Get(st.url)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			results <- result{string(b), err}
		}()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("requests never reached the handler")
		}
	}

	shutdown := make(chan error, 1)
	go func() { shutdown <- st.srv.Shutdown(t.Context()) }()

	// New TCP connections are refused once the drain has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", st.srv.BoundAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("TCP still accepts connections during Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new HTTP/3 connection fails too.
	fresh := &http3.Transport{TLSClientConfig: ca.ClientTLS()}
	defer fresh.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.url, nil)
	if resp, err := fresh.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a new HTTP/3 connection was served during Shutdown")
	}

	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	default:
	}
	close(release)

	got := map[string]bool{}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("in-flight request failed: %v", r.err)
		}
		got[r.body] = true
	}
	if !got["done HTTP/2.0"] || !got["done HTTP/3.0"] {
		t.Fatalf("in-flight bodies = %v", got)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-st.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownTimeoutClosesRemaining(t *testing.T) {
	ca := testca.New(t)
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	})
	st := start(t, ca, h, nil)
	go func() {
		if resp, err := st.h3.Get(st.url); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := st.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
}

func TestServeStopsWhenContextCancelled(t *testing.T) {
	ca := testca.New(t)
	srv := &Server{Addr: "127.0.0.1:0", Handler: protoHandler(), TLSConfig: ca.ServerTLS(t)}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if c, err := net.Dial("tcp", srv.BoundAddr()); err == nil {
		c.Close()
		t.Fatal("TCP still accepting after cancel")
	}
}

// Cancelling Serve's context drains as Shutdown does: new connections are
// refused, the requests running finish (their own contexts not cancelled)
// on both protocols, and only then does Serve return nil.
func TestServeDrainsWhenContextCancelled(t *testing.T) {
	ca := testca.New(t)
	entered := make(chan string, 2)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- r.Proto
		<-release
		fmt.Fprintf(w, "done %s %v", r.Proto, r.Context().Err())
	})
	st := start(t, ca, h, nil)
	results := make(chan string, 2)
	for _, c := range []*http.Client{st.h2, st.h3} {
		go func() {
			resp, err := c.Get(st.url)
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results <- string(b)
		}()
	}
	for range 2 {
		<-entered
	}
	st.cancel()
	for { // the drain has begun once TCP refuses
		c, err := net.DialTimeout("tcp", st.srv.BoundAddr(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-st.served:
		t.Fatalf("Serve returned %v with requests in flight", err)
	default:
	}
	close(release)
	got := map[string]bool{<-results: true, <-results: true}
	if !got["done HTTP/2.0 <nil>"] || !got["done HTTP/3.0 <nil>"] {
		t.Fatalf("in-flight answers = %v", got)
	}
	if err := <-st.served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// A request still running after DrainTimeout is cut, and Serve returns.
func TestServeDrainTimeout(t *testing.T) {
	ca := testca.New(t)
	entered, cut := make(chan struct{}, 1), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
		close(cut)
	})
	st := start(t, ca, h, func(s *Server) { s.DrainTimeout = 100 * time.Millisecond })
	go func() {
		if resp, err := st.h2.Get(st.url); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	st.cancel()
	if err := <-st.served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the running request was not cut")
	}
}

func TestListenErrors(t *testing.T) {
	ca := testca.New(t)
	testCases := []struct {
		name string
		srv  *Server
		want string
	}{
		{"no handler", &Server{Addr: "127.0.0.1:0", TLSConfig: ca.ServerTLS(t)}, "no handler"},
		{"no tls", &Server{Addr: "127.0.0.1:0", Handler: protoHandler()}, "without certificates"},
		{"empty tls", &Server{Addr: "127.0.0.1:0", Handler: protoHandler(), TLSConfig: &tls.Config{}}, "without certificates"},
		{"bad addr", &Server{Addr: "127.0.0.1", Handler: protoHandler(), TLSConfig: ca.ServerTLS(t)}, "parsing address"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.srv.Listen()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Listen = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestListenPortTakenOnUDP(t *testing.T) {
	// A fixed port already taken on UDP fails clearly. The port is one
	// the kernel gave UDP; should its TCP side be someone else's, another.
	ca := testca.New(t)
	for attempt := 1; ; attempt++ {
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		srv := &Server{
			Addr:      udp.LocalAddr().String(),
			Handler:   protoHandler(),
			TLSConfig: ca.ServerTLS(t),
		}
		err = srv.Listen()
		if err == nil {
			srv.Close()
			t.Fatal("Listen succeeded on a port whose UDP side is taken")
		}
		if strings.Contains(err.Error(), "listening on tcp") && errors.Is(err, syscall.EADDRINUSE) && attempt < 10 {
			continue // the TCP side was taken by someone else first
		}
		if !strings.Contains(err.Error(), "udp") {
			t.Fatalf("Listen = %v, want a udp error", err)
		}
		// The TCP socket was released.
		ln, err := net.Listen("tcp", udp.LocalAddr().String())
		if err != nil {
			t.Fatalf("TCP port leaked by failed Listen: %v", err)
		}
		ln.Close()
		return
	}
}

func TestConcurrentRequests(t *testing.T) {
	ca := testca.New(t)
	st := start(t, ca, protoHandler(), func(s *Server) { s.MaxConcurrentStreams = 4 })
	var wg sync.WaitGroup
	for i := range 20 {
		c := st.h2
		if i%2 == 1 {
			c = st.h3
		}
		wg.Go(func() {
			resp, err := c.Get(st.url)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
}

// TestHTTP3WindowsPassLargeBodies: the fixed HTTP/3 flow-control windows
// bound what a connection holds unread, not what a request may carry:
// bodies many windows long, several at once on one connection, arrive
// whole while the handler reads them in small pieces.
func TestHTTP3WindowsPassLargeBodies(t *testing.T) {
	ca := testca.New(t)
	st := start(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 1024)
		n, err := io.CopyBuffer(h, r.Body, buf)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}), nil)
	const size = 8 * QUICConnReceiveWindow
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			body := make([]byte, size)
			for j := range body {
				body[j] = byte(i*31 + j*7)
			}
			resp, err := st.h3.Post(st.url, "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Errorf("body %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("%d %x", size, sha256.Sum256(body)); resp.ProtoMajor != 3 || string(got) != want {
				t.Errorf("body %d over %s: handler saw %q, want %q", i, resp.Proto, got, want)
			}
		})
	}
	wg.Wait()
}

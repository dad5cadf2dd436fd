package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// haproxy starts Debian's haproxy in TCP mode on a free loopback port,
// relaying to backend with a PROXY protocol v2 header, and returns its
// address. Without haproxy the test fails under CI and is skipped
// elsewhere.
func haproxy(t *testing.T, backend string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy missing (apt-get install haproxy)")
		}
		t.Skip("haproxy missing (apt-get install haproxy)")
	}
	// haproxy cannot report a port it picked: take a free one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, fmt.Appendf(nil, `global
	maxconn 64
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend relay_in
	bind %s
	default_backend relay
backend relay
	server odoh %s send-proxy-v2
`, addr, backend), 0o644)
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clientFrom is an HTTPS client whose connections come from the loopback
// address ip, one new connection per request.
func clientFrom(ca *testca.CA, ip string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: ca.ClientTLS(), DialContext: d.DialContext, DisableKeepAlives: true, ForceAttemptHTTP2: true}}
}

func post(c *http.Client, addr string) (int, error) {
	resp, err := c.Post("https://"+addr+queryToNowhere, "application/oblivious-dns-message", bytes.NewReader([]byte{1, 2, 3}))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestProxyProtocolBehindHAProxy: haproxy (send-proxy-v2) in front of the
// relay; two clients behind it are rate-limited separately, by the
// addresses the PROXY headers name. Without -proxy-protocol-from the
// relay refuses haproxy's connections.
func TestProxyProtocolBehindHAProxy(t *testing.T) {
	ca := testca.New(t)
	const burst = 3
	relay := startRelay(t, ca, "-proxy-protocol-from", "127.0.0.1", "-client-rate", "0.001",
		"-client-burst", strconv.Itoa(burst))
	lb := haproxy(t, relay)
	a, b := clientFrom(ca, "127.0.0.2"), clientFrom(ca, "127.0.0.3")
	// The target (127.0.0.1:9) is down: a request the rate limit lets
	// through gets 502, one it stops gets 429.
	for i := range burst {
		if code, err := post(a, lb); err != nil || code != http.StatusBadGateway {
			t.Fatalf("client A, request %d: %d %v, want 502 (admitted)", i+1, code, err)
		}
	}
	if code, err := post(a, lb); err != nil || code != http.StatusTooManyRequests {
		t.Fatalf("client A past its burst: %d %v, want 429", code, err)
	}
	for i := range burst {
		if code, err := post(b, lb); err != nil || code != http.StatusBadGateway {
			t.Errorf("client B, request %d: %d %v, want 502: B has its own limit", i+1, code, err)
		}
	}
	if code, err := post(b, lb); err != nil || code != http.StatusTooManyRequests {
		t.Errorf("client B past its burst: %d %v, want 429", code, err)
	}

	// The same balancer in front of a relay without the setting: its
	// PROXY header is refused, and the client gets no answer.
	plain := startRelay(t, ca)
	lb2 := haproxy(t, plain)
	if code, err := post(clientFrom(ca, "127.0.0.2"), lb2); err == nil {
		t.Errorf("through haproxy to a relay without -proxy-protocol-from: %d, want refused", code)
	}
	// Directly, the relay without the setting serves.
	if code, err := post(clientFrom(ca, "127.0.0.2"), plain); err != nil || code != http.StatusBadGateway {
		t.Errorf("directly: %d %v", code, err)
	}
}

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
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// haproxy starts Debian's haproxy in TCP mode on a loopback port,
// relaying to backend with a PROXY protocol v2 header, and returns its
// address. Without haproxy the test fails under CI and is skipped
// elsewhere.
//
// The listening socket is the test's, bound to a free port and handed to
// haproxy as its file descriptor 3 (bind fd@3): a port released for
// haproxy to bind could be taken by another process in between. haproxy
// exiting before the test ends fails the test, with its output.
func haproxy(t *testing.T, backend string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy missing (apt-get install haproxy)")
		}
		t.Skip("haproxy missing (apt-get install haproxy)")
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	os.WriteFile(cfg, fmt.Appendf(nil, `global
	maxconn 64
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend relay_in
	bind fd@3
	default_backend relay
backend relay
	server odoh %s send-proxy-v2
`, backend), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // haproxy holds its own copy
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Errorf("haproxy exited before the test ended (%v)", err)
		}
		if t.Failed() {
			t.Logf("haproxy:\n%s", out.String())
		}
	})
	return ln.Addr().String()
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

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/odohd/odoh/internal/limitsdoc"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testh2"
	"github.com/odohd/odoh/internal/testlog"
)

// startRelay runs the daemon in this process with args after the listen,
// admin, certificate and allowlist flags (127.0.0.1:9, where nothing
// listens), and returns its query address. It is stopped at the test's end.
func startRelay(t *testing.T, ca *testca.CA, args ...string) string {
	t.Helper()
	addr, _ := startRelayLogs(t, ca, args...)
	return addr
}

// startRelayLogs is startRelay that also returns the daemon's log.
func startRelayLogs(t *testing.T, ca *testca.CA, args ...string) (string, *testlog.Buffer) {
	t.Helper()
	cert, key := ca.Issue(t)
	stderr := &testlog.Buffer{}
	signals := make(chan os.Signal, 1)
	done := make(chan int, 1)
	all := append([]string{"-listen", "127.0.0.1:0", "-admin", "off", "-cert", cert, "-key", key,
		"-allow-target", "127.0.0.1:9"}, args...)
	go func() { done <- run(context.Background(), all, io.Discard, stderr, signals) }()
	t.Cleanup(func() {
		signals <- syscall.SIGTERM
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("relay did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(stderr.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "odoh-proxy serving" {
				return rec["listen"].(string), stderr
			}
		}
		select {
		case code := <-done:
			t.Fatalf("relay exited %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("relay did not start: %s", stderr.String())
	return "", nil
}

const queryToNowhere = "/dns-query?targethost=127.0.0.1:9&targetpath=%2Fdns-query"

// TestRapidResetClosesConnection: HTTP/2 rapid reset against the relay.
// Its handler answers 429 faster than resets arrive, so net/http's own
// mitigation never sees a queue; the reset budget (default) sends GOAWAY.
func TestRapidResetClosesConnection(t *testing.T) {
	ca := testca.New(t)
	addr := startRelay(t, ca)
	ga := testh2.Dial(t, addr, ca.ClientTLS()).RapidReset(t, addr, queryToNowhere, 20000, 30*time.Second)
	if ga == nil {
		t.Fatal("connection closed without GOAWAY")
	}
	if ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY %v, want the reset budget's graceful NO_ERROR", ga.ErrCode)
	}
}

// TestTrickledBodyClosesConnection: a body that misses -body-read-timeout
// gets 408 and its HTTP/1.1 connection is closed after the answer, not
// held until the read timeout.
func TestTrickledBodyClosesConnection(t *testing.T) {
	ca := testca.New(t)
	addr := startRelay(t, ca, "-body-read-timeout", "500ms", "-read-timeout", "10m")
	conf := ca.ClientTLS()
	conf.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST "+queryToNowhere+" HTTP/1.1\r\nHost: relay\r\nContent-Type: application/oblivious-dns-message\r\nContent-Length: 100\r\n\r\nten bytes.")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("%s, Connection %q; want 408 and close", resp.Status, resp.Header.Get("Connection"))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the 408: %v, want the connection closed", err)
	}
}

// TestConnCapPerClient: the N+1st connection from one address is refused
// before TLS while another address connects, and the held ones serve on.
func TestConnCapPerClient(t *testing.T) {
	ca := testca.New(t)
	addr := startRelay(t, ca, "-max-conns-per-client", "2")
	dial := func(ip string) (*http.ClientConn, error) {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr := &http.Transport{TLSClientConfig: ca.ClientTLS(), DialContext: d.DialContext, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP2(true)
		cc, err := tr.NewClientConn(t.Context(), "https", addr)
		if err == nil {
			t.Cleanup(func() { cc.Close() })
		}
		return cc, err
	}
	get := func(cc *http.ClientConn) error {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/.well-known/odohconfigs", nil)
		resp, err := cc.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var held []*http.ClientConn
	for range 2 {
		cc, err := dial("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if err := get(cc); err != nil {
			t.Fatal(err)
		}
		held = append(held, cc)
	}
	if _, err := dial("127.0.0.1"); err == nil {
		t.Error("3rd connection from 127.0.0.1 accepted, want refused")
	}
	if _, err := dial("127.0.0.2"); err != nil {
		t.Errorf("127.0.0.2 refused while 127.0.0.1 is at its cap: %v", err)
	}
	for i, cc := range held {
		if err := get(cc); err != nil {
			t.Errorf("held connection %d: %v", i, err)
		}
	}
}

// TestLimitsTable: the README's limits table matches the relay's flags.
func TestLimitsTable(t *testing.T) {
	limitsdoc.CheckFlags(t, limitsdoc.ReadTable(t, "../../README.md"), "proxy", newFlagSet(&config{}))
}

package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/odohd/odoh/internal/testca"
)

// TestProxyProtocolAddressNeverLeaves: the client address a PROXY header
// names (here 127.0.0.3, behind haproxy) reaches neither the target, in
// any header or the body of the request the relay sends it, nor the
// relay's log, even at debug level.
func TestProxyProtocolAddressNeverLeaves(t *testing.T) {
	ca := testca.New(t)
	const client = "127.0.0.3"
	var mu sync.Mutex
	var seen bytes.Buffer
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		_ = r.Header.Write(&seen)
		seen.WriteString(r.RemoteAddr + " " + r.URL.String() + "\n")
		seen.Write(body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/oblivious-dns-message")
		_, _ = w.Write([]byte{1, 2, 3})
	}))
	target.TLS = ca.ServerTLS(t)
	target.EnableHTTP2 = true
	target.StartTLS()
	defer target.Close()
	host := strings.TrimPrefix(target.URL, "https://")

	relay, logs := startRelayLogs(t, ca, "-proxy-protocol-from", "127.0.0.1", "-allow-target", host,
		"-ca", ca.CAFile(t), "-log-level", "debug")
	lb := haproxy(t, relay)
	resp, err := clientFrom(ca, client).Post("https://"+lb+"/dns-query?targethost="+host+"&targetpath=%2Fdns-query",
		"application/oblivious-dns-message", bytes.NewReader([]byte{4, 5, 6}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	forwarded := seen.String()
	mu.Unlock()
	if resp.StatusCode != http.StatusOK || forwarded == "" {
		t.Fatalf("through haproxy and the relay: %s, the target saw %q; want 200 from the target", resp.Status, forwarded)
	}
	if strings.Contains(forwarded, client) {
		t.Errorf("the target saw the client's address %s:\n%s", client, forwarded)
	}
	if strings.Contains(logs.String(), client) {
		t.Errorf("the relay logged the client's address %s:\n%s", client, logs)
	}
}

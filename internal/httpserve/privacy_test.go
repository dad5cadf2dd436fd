package httpserve

import (
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
)

// Even at debug level, the servers' own logs carry neither request URIs
// (a relay's name its targets) nor peer addresses.
func TestLogsCarryNoURIsOrAddresses(t *testing.T) {
	var logs testlog.Buffer
	ca := testca.New(t)
	st := start(t, ca, protoHandler(), func(s *Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const secret = "targethost=secret-target.example"
	get(t, st.h3, st.url+"?"+secret)
	get(t, st.h2, st.url+"?"+secret)

	// A failed TLS handshake makes net/http log the peer's address.
	c, err := net.Dial("tcp", st.srv.BoundAddr())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "wrong.invalid", InsecureSkipVerify: false})
	_ = tc.Handshake() // fails: the client does not trust the test CA
	tc.Close()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "handshake") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "handshake") {
		t.Fatalf("no handshake error logged at debug level; logs:\n%s", out)
	}
	if strings.Contains(out, "secret-target") {
		t.Errorf("a request URI reached the logs:\n%s", out)
	}
	if strings.Contains(out, "127.0.0.1:") {
		t.Errorf("a peer address reached the logs:\n%s", out)
	}
}

func TestRedactAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"http: TLS handshake error from 192.0.2.1:5555: EOF":         "http: TLS handshake error from <addr>: EOF",
		"http: TLS handshake error from [2001:db8::1]:443: bad":      "http: TLS handshake error from <addr>: bad",
		"http: TLS handshake error from [fe80::1%eth0]:443: timeout": "http: TLS handshake error from <addr>: timeout",
		"accept error: too many open files":                          "accept error: too many open files",
	} {
		if got := addrPattern.ReplaceAllString(in, "<addr>"); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

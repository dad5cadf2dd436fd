package daemon

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// TestConnectionMetrics: the daemon's /metrics counts the connections its
// caps refuse, by reason, and shows those it holds; every reason's series
// is there from the start.
func TestConnectionMetrics(t *testing.T) {
	ca := testca.New(t)
	st := startDaemon(t, ca, "127.0.0.1:0", Service{Name: "odoh-test",
		Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}, "-max-conns-per-client", "1")
	dial := func() (*tls.Conn, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		return tls.DialWithDialer(d, "tcp", st.srv.BoundAddr(), ca.ClientTLS())
	}
	held, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("second connection from 127.0.0.1 accepted over -max-conns-per-client 1")
	}
	resp, err := http.Get("http://" + st.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`odoh_test_connections_refused_total{reason="max_conns_per_client"} 1`,
		`odoh_test_connections_refused_total{reason="max_conns"} 0`,
		`odoh_test_connections_refused_total{reason="proxy_header_untrusted"} 0`,
		`odoh_test_connections_refused_total{reason="proxy_header_invalid"} 0`,
		`odoh_test_connections_closed_total{reason="reset_budget"} 0`,
		`odoh_test_connections_closed_total{reason="late_body"} 0`,
		"odoh_test_connections_open 1",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

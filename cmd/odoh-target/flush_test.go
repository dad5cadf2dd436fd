package main

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testdns"
)

// changingDNS is an upstream on loopback whose A answer the test changes.
func changingDNS(t *testing.T) (string, *atomic.Pointer[string]) {
	t.Helper()
	addr := new(atomic.Pointer[string])
	v1 := "192.0.2.1"
	addr.Store(&v1)
	srv := testdns.Start(t, func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A " + *addr.Load())
		r.Answer = append(r.Answer, rr)
		_ = w.WriteMsg(r)
	})
	return srv.Addr, addr
}

// TestCacheFlushOverAdmin: a name is cached, changed upstream, flushed
// through POST /cache/flush on the admin listener, and the next query sees
// the change; the endpoint refuses GET, browsers and bad parameters.
func TestCacheFlushOverAdmin(t *testing.T) {
	upstream, answer := changingDNS(t)
	ca := testca.New(t)
	d := startDaemon(t, ca, "-upstream", "udp://"+upstream)
	c := clients(ca)["h2"]
	cfg := fetchConfigs(t, c, d.addr)
	lookup := func() string {
		t.Helper()
		res := <-sendQuery(c, d.addr, cfg, "www.flush.example.")
		if res.err != nil || res.status != http.StatusOK {
			t.Fatalf("query: %d %v", res.status, res.err)
		}
		return res.answer
	}
	if got := lookup(); got != "192.0.2.1" {
		t.Fatalf("first answer %s", got)
	}
	v2 := "192.0.2.2"
	answer.Store(&v2)
	if got := lookup(); got != "192.0.2.1" {
		t.Fatalf("answer %s before the flush, want the cached 192.0.2.1", got)
	}
	flush := func(method, query string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+d.admin+"/cache/flush?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		method, query string
		header        []string
		status        int
	}{
		{http.MethodGet, "name=www.flush.example", nil, http.StatusMethodNotAllowed},
		{http.MethodPost, "name=www.flush.example", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{http.MethodPost, "name=www.flush.example", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{http.MethodPost, "", nil, http.StatusBadRequest},
		{http.MethodPost, "name=www.flush.example&what=1", nil, http.StatusBadRequest},
		{http.MethodPost, "all=true&name=x", nil, http.StatusBadRequest},
	} {
		if status, body := flush(tc.method, tc.query, tc.header...); status != tc.status {
			t.Errorf("%s ?%s %v: %d %q, want %d", tc.method, tc.query, tc.header, status, body, tc.status)
		}
	}
	if got := lookup(); got != "192.0.2.1" {
		t.Fatalf("a refused flush flushed: %s", got)
	}
	if status, body := flush(http.MethodPost, "name=WWW.flush.example"); status != http.StatusOK || !strings.Contains(body, "flushed 1 entries") {
		t.Fatalf("flush: %d %q", status, body)
	}
	if got := lookup(); got != "192.0.2.2" {
		t.Fatalf("answer %s after the flush, want the changed 192.0.2.2", got)
	}
	v3 := "192.0.2.3"
	answer.Store(&v3)
	if status, body := flush(http.MethodPost, "name=example.&subtree=true"); status != http.StatusOK || !strings.Contains(body, "flushed 1 entries") {
		t.Fatalf("subtree flush: %d %q", status, body)
	}
	if got := lookup(); got != "192.0.2.3" {
		t.Fatalf("answer %s after the subtree flush, want 192.0.2.3", got)
	}
	if status, body := flush(http.MethodPost, "all=true"); status != http.StatusOK || !strings.Contains(body, "flushed 1 entries") {
		t.Fatalf("flush of everything: %d %q", status, body)
	}
}

package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/odoh"
)

// slowDNS serves every A query with 192.0.2.42 after delay, on UDP at
// 127.0.0.1. Each query received is announced on the returned channel.
func slowDNS(t *testing.T, delay time.Duration) (string, <-chan struct{}) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 16)
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		got <- struct{}{}
		time.Sleep(delay)
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.42")
		r.Answer = append(r.Answer, rr)
		_ = w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), got
}

// inflight is the outcome of one ODoH query sent in the background.
type inflight struct {
	status int
	answer string
	err    error
}

// sendQuery seals an A query for name to cfg and posts it with c, in the
// background.
func sendQuery(c *http.Client, addr string, cfg *odoh.Config, name string) <-chan inflight {
	out := make(chan inflight, 1)
	go func() {
		wire, _ := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
		msg, qctx, err := odoh.SealQuery(cfg, wire)
		if err != nil {
			out <- inflight{err: err}
			return
		}
		resp, err := c.Post("https://"+addr+"/dns-query", odoh.ContentType, bytes.NewReader(msg))
		if err != nil {
			out <- inflight{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res := inflight{status: resp.StatusCode, err: err}
		if err != nil || resp.StatusCode != http.StatusOK {
			out <- res
			return
		}
		plain, err := qctx.OpenResponse(body)
		if err != nil {
			res.err = err
			out <- res
			return
		}
		m := new(dns.Msg)
		if res.err = m.Unpack(plain); res.err == nil {
			res.answer = dns.RcodeToString[m.Rcode]
			if len(m.Answer) == 1 {
				if a, ok := m.Answer[0].(*dns.A); ok {
					res.answer = a.A.String()
				}
			}
		}
		out <- res
	}()
	return out
}

// TestDrainFinishesInFlightQueries: queries in flight over HTTP/2 and HTTP/3
// when SIGTERM arrives are answered in full; /readyz fails during the
// lameduck; the process then exits 0.
func TestDrainFinishesInFlightQueries(t *testing.T) {
	const delay = 2 * time.Second
	upstream, received := slowDNS(t, delay)
	ca := testca.New(t)
	d := startDaemon(t, ca, "-upstream", "udp://"+upstream, "-upstream-timeout", "10s",
		"-query-timeout", "10s", "-lameduck", "1s", "-drain-timeout", "10s")
	cs := clients(ca)
	cfg := fetchConfigs(t, cs["h2"], d.addr)
	results := map[string]<-chan inflight{}
	for name, c := range cs {
		// One name per query: the target coalesces identical ones.
		results[name] = sendQuery(c, d.addr, cfg, "slow-"+name+".example.")
	}
	// Both queries are at the upstream: they are in flight.
	for range cs {
		select {
		case <-received:
		case <-time.After(10 * time.Second):
			t.Fatal("the queries never reached the upstream")
		}
	}
	sent := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The lameduck: /readyz fails while the process still serves. It is
	// asked until it fails or the admin listener closes (the deadline is
	// a hang guard: a loaded machine may take a while to act on SIGTERM).
	readyFailed := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + d.admin + "/readyz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			readyFailed = true
			break
		}
	}
	if !readyFailed {
		t.Error("/readyz did not turn 503 during the lameduck")
	}
	for name, res := range results {
		select {
		case r := <-res:
			if r.err != nil || r.status != http.StatusOK || r.answer != "192.0.2.42" {
				t.Errorf("%s: in-flight query: status %d, answer %q, err %v; want 200 with 192.0.2.42", name, r.status, r.answer, r.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: in-flight query never completed", name)
		}
	}
	if since := time.Since(sent); since < delay/2 {
		t.Errorf("answers arrived %v after SIGTERM: they were not in flight", since)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("exit after the drain: %v, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after the drain")
	}
}

// fetchConfigs gets the target's first config.
func fetchConfigs(t *testing.T, c *http.Client, addr string) *odoh.Config {
	t.Helper()
	resp, err := c.Get("https://" + addr + "/.well-known/odohconfigs")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cfgs, err := odoh.ParseConfigs(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfgs[0]
}

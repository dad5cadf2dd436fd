package client

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPPoolShrinksOnlyAfterAQuietSecond: a worker with many idle
// workers beside it stays while the pool was short of readers within
// udpShrinkAfter (so that a steady load does not start a new worker, with
// a new stack to grow, for every other query), and exits once it was not.
func TestUDPPoolShrinksOnlyAfterAQuietSecond(t *testing.T) {
	u := &udpServer{max: 100}
	u.workers.Store(40)
	u.idle.Store(udpSpareWorkers + 40/8 + 1) // idle beyond the spare
	u.start = time.Now()
	u.short.Store(int64(time.Since(u.start)))
	if u.surplus() {
		t.Fatal("a worker exits right after the pool was short of readers")
	}
	u.start = u.start.Add(-udpShrinkAfter - time.Millisecond) // as if that was that long ago
	if !u.surplus() {
		t.Fatalf("with %d of %d workers idle and no shortage for %v, no worker exits", u.idle.Load(), u.workers.Load(), udpShrinkAfter)
	}
	u.idle.Store(udpSpareWorkers + 40/8)
	if u.surplus() {
		t.Fatal("a worker exits with no more than the spare workers idle")
	}
}

// TestUDPAnswersFromTheQueriedAddress: a stub bound to a wildcard address
// answers each query from the address it was sent to (a client's
// connected socket takes no other), for addresses in turn, so that the
// control message a worker keeps for the last address is made again for
// a new one.
func TestUDPAnswersFromTheQueriedAddress(t *testing.T) {
	c, ft, _ := fuzzClient(t, ConfigStatic, nil)
	q0 := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	a0 := new(dns.Msg).SetReply(q0)
	a0.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	wire, err := a0.Pack()
	if err != nil {
		t.Fatal(err)
	}
	answering(ft, wire)
	for _, bind := range []string{"0.0.0.0:0", "[::]:0"} {
		s, err := NewStub(StubConfig{Client: c, Addr: bind, CacheSize: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		_, port, _ := net.SplitHostPort(s.Addr())
		for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.1"} {
			q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
			dc := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			r, _, err := dc.Exchange(q, net.JoinHostPort(ip, port))
			if err != nil {
				t.Errorf("bound to %s, query to %s: %v", bind, ip, err)
				continue
			}
			if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("bound to %s, query to %s: answer %v", bind, ip, r)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

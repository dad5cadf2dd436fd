package client_test

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/testdns"
	"github.com/odohd/odoh/target"
)

// vanished is a recursive resolver on loopback for a domain whose servers
// vanished: it answers SERVFAIL after a while (its own timeouts), until
// back is set, then the address. It counts the queries it receives.
type vanished struct {
	addr    string
	queries atomic.Int64
	back    atomic.Bool
}

func startVanished(t testing.TB, delay time.Duration) *vanished {
	t.Helper()
	v := &vanished{}
	v.addr = testdns.Start(t, func(w dns.ResponseWriter, q *dns.Msg) {
		v.queries.Add(1)
		if !v.back.Load() {
			time.Sleep(delay)
			_ = w.WriteMsg(new(dns.Msg).SetRcode(q, dns.RcodeServerFailure))
			return
		}
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.90")
		r.Answer = []dns.RR{rr}
		_ = w.WriteMsg(r)
	}).Addr
	return v
}

// hammer is the clients of one stub: each asks for name, waits for the
// answer (at most a second, then it asks again) and asks again 10 ms
// later, until stop. It counts the queries sent and when the first NOERROR
// came after recovering was set.
type hammer struct {
	sent       atomic.Int64
	recovering atomic.Int64 // unix ns when the upstream came back; 0 before
	recovered  atomic.Int64 // unix ns of the first NOERROR after it
}

func (h *hammer) run(t testing.TB, addr, name string, clients int, stop <-chan struct{}, wg *sync.WaitGroup) {
	for range clients {
		wg.Go(func() {
			// Dialling UDP only binds a socket, but a starved machine
			// (the whole suite under -race) can take its time.
			c := &dns.Client{Net: "udp", DialTimeout: 30 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
			conn, err := c.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				q := new(dns.Msg).SetQuestion(name, dns.TypeA)
				h.sent.Add(1)
				r, _, err := c.ExchangeWithConn(q, conn)
				if err == nil && r.Rcode == dns.RcodeSuccess && h.recovering.Load() != 0 {
					h.recovered.CompareAndSwap(0, time.Now().UnixNano())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestStubAmplification: while the servers of a domain have vanished (the
// target's resolver answers SERVFAIL) and 100 clients hammer one name
// through the stub, upstream queries ÷ client queries, before (the stub's
// and the target's caches off, no per-name bound: every client query goes
// all the way) and after (the defaults: coalescing, failure caching),
// measured side by side on two stacks. After: at most 0.05. Then the
// upstream comes back and answers return about a second later (both
// caches hold the failure at most 1 s). Each stack is hammered for
// ODOH_AMPLIFICATION_SECONDS (default 10) seconds; go test -v prints the
// figures.
func TestStubAmplification(t *testing.T) {
	secs := 10
	if v := os.Getenv("ODOH_AMPLIFICATION_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ODOH_AMPLIFICATION_SECONDS=%q: want a positive number of seconds", v)
		}
		secs = n
	}
	const clients, name = 100, "vanished.example."
	type setup struct {
		label                 string
		up                    *vanished
		odoh                  *atomic.Int64
		hammer                hammer
		stub                  *client.Stub
		sent, odohN, upstream int64
	}
	// One stack at a time, so that the CPU the uncached one burns on
	// sealing every query does not slow the other's recovery.
	var stacks []*setup
	for _, before := range []bool{false, true} {
		up := startVanished(t, 100*time.Millisecond)
		var cache *target.Cache
		if !before {
			var err error
			if cache, err = target.NewCache(target.CacheConfig{}); err != nil {
				t.Fatal(err)
			}
		}
		s, odohQueries := realStack(t, cache, "udp://"+up.addr)
		cfg := client.StubConfig{Client: s.client(t, s.options(false)), Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
		label := "after (coalescing, failure caching)"
		if before {
			label = "before (caches off, no per-name bound)"
			cfg.CacheSize, cfg.MaxInFlightPerName, cfg.MaxInFlight = -1, 1<<20, 1<<20
		}
		x := &setup{label: label, up: up, odoh: odohQueries, stub: runStub(t, cfg)}
		stacks = append(stacks, x)
		// Configs fetched and connections open before the count starts.
		exchangeStub(t, x.stub.Addr(), "udp", query("warm.example.", dns.TypeA))
		x.odoh.Store(0)
		upBefore := up.queries.Load()

		stop := make(chan struct{})
		var wg sync.WaitGroup
		x.hammer.run(t, x.stub.Addr(), name, clients, stop, &wg)
		time.Sleep(time.Duration(secs) * time.Second)
		x.sent, x.upstream, x.odohN = x.hammer.sent.Load(), up.queries.Load()-upBefore, x.odoh.Load()
		// The upstream comes back while the clients go on.
		x.hammer.recovering.Store(time.Now().UnixNano())
		up.back.Store(true)
		deadline := time.Now().Add(10 * time.Second)
		for x.hammer.recovered.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
	}

	report := fmt.Sprintf("amplification, %d clients hammering %s for %d s while its servers are gone:\n", clients, name, secs)
	for _, s := range stacks {
		report += fmt.Sprintf("  %-40s client queries %7d  odoh queries %6d (%.4f)  upstream queries %6d (%.4f)\n",
			s.label, s.sent, s.odohN, float64(s.odohN)/float64(s.sent), s.upstream, float64(s.upstream)/float64(s.sent))
	}
	after, before := stacks[0], stacks[1]
	rec := time.Duration(after.hammer.recovered.Load() - after.hammer.recovering.Load())
	report += fmt.Sprintf("  after the upstream's return, the first answer came in %v", rec.Round(time.Millisecond))
	t.Log(report)

	if before.sent == 0 || after.sent == 0 {
		t.Fatal("no client query sent")
	}
	if r := float64(after.upstream) / float64(after.sent); r > 0.05 {
		t.Errorf("upstream ÷ client queries %.4f with coalescing and failure caching, want at most 0.05", r)
	}
	// With the caches off every client query goes upstream (on a loaded
	// machine some are still in flight when the count is taken, and
	// clients time out and ask again): far more than with them.
	if rb, ra := float64(before.upstream)/float64(before.sent), float64(after.upstream)/float64(after.sent); rb < 10*ra {
		t.Errorf("upstream ÷ client queries %.4f with the caches off, %.4f with them: the comparison measures nothing", rb, ra)
	}
	// Both caches hold a failure at most 1 s; 3 s leaves room for a busy
	// machine, and catches a failure held 5 s or a 30 s health backoff.
	if after.hammer.recovered.Load() == 0 || rec > 3*time.Second {
		t.Errorf("answers came back %v after the upstream did, want about a second", rec)
	}
}

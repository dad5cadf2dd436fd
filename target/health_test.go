package target_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/internal/metrics/metricstest"
	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/target"
)

// fakeUpstream is a UDP DNS server on 127.0.0.1 that counts the queries it
// receives and either never answers (dead; with refuse, it answers
// REFUSED) or answers every A query with 192.0.2.100 (alive).
type fakeUpstream struct {
	addr    string
	queries atomic.Int64
	alive   atomic.Bool
	refuse  atomic.Bool
	delay   atomic.Int64 // answer this many ns late
}

func startFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{addr: pc.LocalAddr().String()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.queries.Add(1)
			if !f.alive.Load() && !f.refuse.Load() {
				continue
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || len(q.Question) != 1 {
				continue
			}
			if !f.alive.Load() {
				wire, _ := new(dns.Msg).SetRcode(q, dns.RcodeRefused).Pack()
				_, _ = pc.WriteTo(wire, from)
				continue
			}
			r := new(dns.Msg).SetReply(q)
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.100")
			r.Answer = append(r.Answer, rr)
			wire, _ := r.Pack()
			if d := time.Duration(f.delay.Load()); d > 0 {
				time.AfterFunc(d, func() { _, _ = pc.WriteTo(wire, from) })
				continue
			}
			_, _ = pc.WriteTo(wire, from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return f
}

// TestUpstreamHealth: a failing first upstream is asked first only until
// it is marked down; then it is skipped, probed once per backoff (which
// doubles), and back in front as soon as a probe succeeds. It fails by
// answering REFUSED, so that no step waits on a timeout (the race delay is
// the whole timeout: a probe is never raced, only followed on failure).
func TestUpstreamHealth(t *testing.T) {
	ub := testunbound.Start(t, testunbound.Options{Zones: []string{"ub.test."}, LocalData: []string{"a.ub.test. 60 IN A 192.0.2.5"}})
	dead := startFakeUpstream(t)
	dead.refuse.Store(true)
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0))
	reg := prometheus.NewRegistry()
	tm, err := metrics.NewTarget(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := target.NewUpstreams(target.UpstreamsConfig{
		URLs:    []string{"udp://" + dead.addr, "udp://" + ub},
		Timeout: 10 * time.Second, RaceDelay: 10 * time.Second, MaxFails: 3, MinBackoff: time.Second, MaxBackoff: 4 * time.Second,
		Now: clock.Now, Metrics: tm,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ask := func(want string) {
		t.Helper()
		m := resolve(t, up, "a.ub.test.", dns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want {
			t.Fatalf("answer %v, want %s", m.Answer, want)
		}
	}
	attempts := func(want int64) {
		t.Helper()
		if n := dead.queries.Load(); n != want {
			t.Fatalf("%d attempts at the dead upstream, want %d", n, want)
		}
	}
	if g := metricstest.Must(t, reg, "odoh_target_upstream_up", map[string]string{"upstream": "0"}); g != 1 {
		t.Fatalf("upstream 0 starts with up=%v", g)
	}

	// Three failures in a row mark it down; then it is not asked at all.
	for range 3 {
		ask("192.0.2.5")
	}
	attempts(3)
	for range 20 {
		ask("192.0.2.5")
	}
	attempts(3)
	if g := metricstest.Must(t, reg, "odoh_target_upstream_up", map[string]string{"upstream": "0"}); g != 0 {
		t.Errorf("dead upstream: up=%v, want 0", g)
	}
	if g := metricstest.Must(t, reg, "odoh_target_upstream_up", map[string]string{"upstream": "1"}); g != 1 {
		t.Errorf("live upstream: up=%v, want 1", g)
	}

	// After the 1 s backoff one query probes it; the failed probe doubles
	// the backoff to 2 s.
	clock.Advance(time.Second)
	ask("192.0.2.5")
	attempts(4)
	ask("192.0.2.5")
	attempts(4)
	clock.Advance(1500 * time.Millisecond)
	ask("192.0.2.5")
	attempts(4)
	clock.Advance(500 * time.Millisecond)
	ask("192.0.2.5")
	attempts(5)

	// It comes back: the next probe (after 4 s) succeeds and it is first
	// in line again, for every query.
	dead.alive.Store(true)
	clock.Advance(4 * time.Second)
	ask("192.0.2.100")
	attempts(6)
	for range 5 {
		ask("192.0.2.100")
	}
	attempts(11)
	if g := metricstest.Must(t, reg, "odoh_target_upstream_up", map[string]string{"upstream": "0"}); g != 1 {
		t.Errorf("recovered upstream: up=%v, want 1", g)
	}

	// The success reset the count: dead again, it takes three failures
	// and the backoff starts over at 1 s.
	dead.alive.Store(false)
	for range 4 {
		ask("192.0.2.5")
	}
	attempts(14)
	clock.Advance(time.Second)
	ask("192.0.2.5")
	attempts(15)

	// Concurrent queries when the backoff (now 2 s) ends: exactly one
	// probes, the others skip the upstream while the probe is in flight.
	clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			q := new(dns.Msg).SetQuestion("a.ub.test.", dns.TypeA)
			if m, err := up.Resolve(context.Background(), q); err != nil || len(m.Answer) != 1 {
				t.Errorf("concurrent query: %v, %v", m, err)
			}
		})
	}
	wg.Wait()
	attempts(16)
}

// TestUpstreamsAllDownStillTried: when every upstream is down, queries
// still try each of them, in order, rather than failing without trying.
// They fail by refusing, at once; the timeout and race delay are hang
// guards (a failure starts the next attempt at once).
func TestUpstreamsAllDownStillTried(t *testing.T) {
	a, b := startFakeUpstream(t), startFakeUpstream(t)
	a.refuse.Store(true)
	b.refuse.Store(true)
	clock := &fakeClock{}
	clock.Set(time.Unix(1_700_000_000, 0))
	up, err := target.NewUpstreams(target.UpstreamsConfig{
		URLs:    []string{"udp://" + a.addr, "udp://" + b.addr},
		Timeout: 10 * time.Second, RaceDelay: 10 * time.Second, MaxFails: 1, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	q := new(dns.Msg).SetQuestion("x.example.", dns.TypeA)
	for i := range 3 {
		if _, err := up.Resolve(context.Background(), q); !errors.Is(err, target.ErrNoUpstream) {
			t.Fatalf("query %d: %v, want ErrNoUpstream", i, err)
		}
	}
	if na, nb := a.queries.Load(), b.queries.Load(); na != 3 || nb != 3 {
		t.Fatalf("attempts %d and %d, want 3 each", na, nb)
	}
	// The second answers again: found as a last resort while both are
	// down, and then up again.
	b.alive.Store(true)
	m := resolve(t, up, "x.example.", dns.TypeA)
	if len(m.Answer) != 1 {
		t.Fatalf("answer %v", m)
	}
	if na := a.queries.Load(); na != 4 {
		t.Errorf("first upstream asked %d times, want 4 (in order, before the second)", na)
	}
	resolve(t, up, "x.example.", dns.TypeA)
	if na, nb := a.queries.Load(), b.queries.Load(); na != 4 || nb != 5 {
		t.Errorf("attempts %d and %d, want 4 and 5: the down first upstream skipped", na, nb)
	}
}

func TestUpstreamHealthDisabledAndBadOptions(t *testing.T) {
	// The first fails by refusing, at once: the timeout is a hang guard.
	dead := startFakeUpstream(t)
	dead.refuse.Store(true)
	ub := startFakeUpstream(t)
	ub.alive.Store(true)
	up, err := target.NewUpstreams(target.UpstreamsConfig{
		URLs:    []string{"udp://" + dead.addr, "udp://" + ub.addr},
		Timeout: 10 * time.Second, MaxFails: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	for range 5 {
		resolve(t, up, "x.example.", dns.TypeA)
	}
	if n := dead.queries.Load(); n != 5 {
		t.Errorf("health tracking disabled: %d attempts at the dead upstream, want 5", n)
	}
	for _, o := range []target.UpstreamsConfig{
		{MinBackoff: -time.Second},
		{MaxBackoff: -time.Second},
		{MinBackoff: 10 * time.Second, MaxBackoff: time.Second},
	} {
		o.URLs = []string{"udp://127.0.0.1:53"}
		if _, err := target.NewUpstreams(o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// TestUpstreamTimeoutAboveTwoSeconds: the per-attempt timeout is the one
// configured, not the 2-second default of the DNS client library.
func TestUpstreamTimeoutAboveTwoSeconds(t *testing.T) {
	slow := startFakeUpstream(t)
	slow.alive.Store(true)
	slow.delay.Store(int64(2300 * time.Millisecond))
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + slow.addr}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	q := new(dns.Msg).SetQuestion("slow.example.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := up.Resolve(ctx, q)
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("answer after 2.3 s with a 10 s timeout: %v, %v", m, err)
	}
}

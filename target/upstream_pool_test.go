package target_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odohd/odoh/internal/metrics"
	"github.com/odohd/odoh/internal/metrics/metricstest"
	"github.com/odohd/odoh/target"
)

// scriptedDNS is a DNS server on 127.0.0.1, over UDP or TCP, that records
// the source address and ID of every query and answers with what reply
// returns (any number of messages, in order).
type scriptedDNS struct {
	addr  string
	mu    sync.Mutex
	ids   []uint16
	froms map[string]bool
}

func (s *scriptedDNS) record(q *dns.Msg, from string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, q.Id)
	s.froms[from] = true
}

func (s *scriptedDNS) seen() (ids []uint16, sources int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint16(nil), s.ids...), len(s.froms)
}

func startScripted(t *testing.T, network string, reply func(q *dns.Msg) []*dns.Msg) *scriptedDNS {
	t.Helper()
	s := &scriptedDNS{froms: map[string]bool{}}
	answer := func(b []byte, from string) [][]byte {
		q := new(dns.Msg)
		if q.Unpack(b) != nil {
			return nil
		}
		s.record(q, from)
		var out [][]byte
		for _, r := range reply(q) {
			w, err := r.Pack()
			if err != nil {
				t.Error(err)
			}
			out = append(out, w)
		}
		return out
	}
	var wg sync.WaitGroup
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = pc.LocalAddr().String()
		wg.Go(func() {
			buf := make([]byte, 65535)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				for _, w := range answer(buf[:n], from.String()) {
					_, _ = pc.WriteTo(w, from)
				}
			}
		})
		t.Cleanup(func() { pc.Close(); wg.Wait() })
		return s
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var conns sync.Map
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Go(func() {
				defer c.Close()
				for {
					var l [2]byte
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					b := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(c, b); err != nil {
						return
					}
					for _, w := range answer(b, c.RemoteAddr().String()) {
						_, _ = c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(w))), w...))
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return s
}

// aAnswer is a reply to q with one A record.
func aAnswer(q *dns.Msg, ip string) *dns.Msg {
	r := new(dns.Msg).SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A " + ip)
	r.Answer = append(r.Answer, rr)
	return r
}

// TestUpstreamPooledSockets: sequential queries over UDP and TCP share one
// socket (one source address), each with its own random ID, never the
// client's.
func TestUpstreamPooledSockets(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			s := startScripted(t, network, func(q *dns.Msg) []*dns.Msg { return []*dns.Msg{aAnswer(q, "192.0.2.7")} })
			up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{network + "://" + s.addr}})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			for range 50 {
				if m := resolve(t, up, "pool.example.", dns.TypeA); len(m.Answer) != 1 {
					t.Fatalf("answer %v", m)
				}
			}
			ids, sources := s.seen()
			if sources != 1 {
				t.Errorf("50 sequential queries came from %d sockets, want 1", sources)
			}
			distinct := map[uint16]bool{}
			for _, id := range ids {
				if id == 0x4321 {
					t.Error("the client's ID reached the upstream")
				}
				distinct[id] = true
			}
			// 50 draws from 65536 values: the chance of fewer than 45
			// distinct ones is far below 1e-9.
			if len(distinct) < 45 {
				t.Errorf("%d distinct IDs in 50 queries: not random", len(distinct))
			}
		})
	}
}

// TestUpstreamDropsMismatchedAnswers: an answer with another ID, another
// name, type or class, or without the QR bit is dropped and counted, and
// the exchange waits for the one that matches, over UDP and TCP.
func TestUpstreamDropsMismatchedAnswers(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			s := startScripted(t, network, func(q *dns.Msg) []*dns.Msg {
				wrongID := aAnswer(q, "192.0.2.66")
				wrongID.Id = q.Id + 1
				wrongName := aAnswer(q, "192.0.2.66")
				wrongName.Question[0].Name = "other.example."
				wrongType := aAnswer(q, "192.0.2.66")
				wrongType.Question[0].Qtype = dns.TypeAAAA
				wrongClass := aAnswer(q, "192.0.2.66")
				wrongClass.Question[0].Qclass = dns.ClassCHAOS
				notResponse := aAnswer(q, "192.0.2.66")
				notResponse.Response = false
				return []*dns.Msg{wrongID, wrongName, wrongType, wrongClass, notResponse, aAnswer(q, "192.0.2.7")}
			})
			reg := prometheus.NewRegistry()
			tm, err := metrics.NewTarget(reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{network + "://" + s.addr}, Metrics: tm})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			for range 3 {
				m := resolve(t, up, "MiXed.example.", dns.TypeA)
				if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
					t.Fatalf("answer %v, want the matching one", m.Answer)
				}
			}
			if n := metricstest.Must(t, reg, "odoh_target_upstream_mismatched_total", map[string]string{"upstream": "0"}); n != 15 {
				t.Errorf("mismatched answers counted: %v, want 15", n)
			}
			if n, _ := metricstest.Value(t, reg, "odoh_target_upstream_errors_total", map[string]string{"upstream": "0"}); n != 0 {
				t.Errorf("upstream errors: %v, want 0", n)
			}
		})
	}
}

// TestUpstreamSocketClosedAfterTimeout: a query that timed out does not
// give its socket back, so its late answer cannot reach the next query.
func TestUpstreamSocketClosedAfterTimeout(t *testing.T) {
	var mu sync.Mutex
	first := true
	s := startScripted(t, "udp", func(q *dns.Msg) []*dns.Msg {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return nil // never answered: the attempt times out
		}
		return []*dns.Msg{aAnswer(q, "192.0.2.7")}
	})
	// The unanswered attempt ends at its query's deadline, the answered
	// one has the (hang guard) timeout: a live answer never races it.
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + s.addr}, Timeout: 10 * time.Second, MaxFails: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	q := new(dns.Msg).SetQuestion("late.example.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := up.Resolve(ctx, q); err == nil {
		t.Fatal("unanswered query succeeded")
	}
	resolve(t, up, "late.example.", dns.TypeA)
	if _, sources := s.seen(); sources != 2 {
		t.Errorf("queries came from %d sockets, want 2 (the timed-out one closed)", sources)
	}
}

package target_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/target"
)

func resolve(t *testing.T, r target.Resolver, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.Id = 0x4321
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := r.Resolve(ctx, q)
	if err != nil {
		t.Fatalf("resolving %s: %v", name, err)
	}
	if m.Id != 0x4321 {
		t.Errorf("answer ID %#x, want the query's", m.Id)
	}
	return m
}

func TestUpstreamTruncationRetriesOverTCP(t *testing.T) {
	addr := testunbound.Start(t, testunbound.Options{Zones: []string{"ub.test."}, LargeNames: []string{"big.ub.test."}})
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	// Without EDNS, Unbound truncates the ~1000-byte answer over UDP.
	m := resolve(t, up, "big.ub.test.", dns.TypeTXT)
	if m.Truncated || len(m.Answer) != testunbound.LargeRecords {
		t.Fatalf("truncated %v with %d records, want the full answer over TCP", m.Truncated, len(m.Answer))
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startDNS serves a fixed A answer on a TCP listener (TLS if conf is set).
func startDNS(t *testing.T, conf *tls.Config) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	cl := &countingListener{Listener: ln}
	srv := &dns.Server{Listener: cl, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.9")
		r.Answer = append(r.Answer, rr)
		_ = w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), cl
}

func TestUpstreamStreamsReuseConnections(t *testing.T) {
	ca := testca.New(t)
	for _, tc := range []struct {
		scheme string
		conf   *tls.Config
	}{{"tcp", nil}, {"tls", ca.ServerTLS(t)}} {
		t.Run(tc.scheme, func(t *testing.T) {
			addr, ln := startDNS(t, tc.conf)
			up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{tc.scheme + "://" + addr}, TLSConfig: ca.ClientTLS()})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			for range 10 {
				m := resolve(t, up, "x.example.", dns.TypeA)
				if len(m.Answer) != 1 {
					t.Fatalf("answer %v", m)
				}
			}
			if n := ln.n.Load(); n != 1 {
				t.Errorf("%d connections for 10 sequential queries, want 1", n)
			}
		})
	}
}

func TestUpstreamDoH(t *testing.T) {
	// A DoH upstream: another target's handler in DoH mode.
	s := serve(t, zoneHandler(t, nil))
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{s.url + odoh.QueryPath}, TLSConfig: s.tls})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if m := resolve(t, up, "www.zone.test.", dns.TypeA); len(m.Answer) != 1 {
		t.Fatalf("answer %v", m)
	}
}

// TestUpstreamFailover: past a silent upstream (its timeout) and a refused
// one (at once) to one that answers. The timeout is the silent one's cost
// and the live one's budget: long enough for Unbound on a loaded machine.
func TestUpstreamFailover(t *testing.T) {
	addr := testunbound.Start(t, testunbound.Options{Zones: []string{"ub.test."}, LocalData: []string{"a.ub.test. 60 IN A 192.0.2.5"}})
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + deadUDP(t), "tcp://127.0.0.1:9", "udp://" + addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	m := resolve(t, up, "a.ub.test.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.5" {
		t.Fatalf("answer %v", m)
	}
}

func TestNewUpstreamsRejects(t *testing.T) {
	for _, u := range []string{"ftp://x", "udp://", "tcp://host/path", "udp://user@host"} {
		if _, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{u}}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if _, err := target.NewUpstreams(target.UpstreamsConfig{URLs: nil}); err == nil {
		t.Error("empty list accepted")
	}
}

func TestSystemUpstreams(t *testing.T) {
	// Parsing only: tests never query the system resolvers.
	p := t.TempDir() + "/resolv.conf"
	writeFile(t, p, "nameserver 192.0.2.1\nnameserver 2001:db8::1\n")
	urls, err := target.SystemUpstreams(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(urls, " ") != "udp://192.0.2.1:53 udp://[2001:db8::1]:53" {
		t.Errorf("urls %v", urls)
	}
}

// udpResponder answers every UDP query on loopback with answer, its ID
// set to the query's.
func udpResponder(t *testing.T, answer []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 2 {
				a := append([]byte(nil), answer...)
				copy(a, buf[:2])
				_, _ = pc.WriteTo(a, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// An "answer" with another opcode than the query's (here NOTIFY, with the
// query's ID and question) is no answer: it is dropped, and the query
// fails when nothing else comes. (Found by FuzzUpstreamAnswer: it was
// relayed to the client.)
func TestUpstreamAnswerWithOtherOpcodeIsDropped(t *testing.T) {
	notify := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	notify.Response, notify.Opcode = true, dns.OpcodeNotify
	wire, err := notify.Pack()
	if err != nil {
		t.Fatal(err)
	}
	up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + udpResponder(t, wire)},
		Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := up.Resolve(ctx, q); err == nil {
		t.Fatalf("answer with opcode %s relayed: %v", dns.OpcodeToString[r.Opcode], r)
	}
}

// An upstream answer that the DNS library unpacks but cannot pack back
// into a readable message (here an SOA with empty RDATA, which packs
// without its names) is the upstream's failure: the client gets SERVFAIL,
// never bytes it cannot read. (Found by FuzzUpstreamAnswer.)
func TestUpstreamAnswerThatCannotRepackFails(t *testing.T) {
	for _, answer := range [][]byte{
		// ID (patched), QR RD, one question, one authority record: "."
		// SOA with RDLENGTH 0.
		[]byte("\x00\x00\x81\x00\x00\x01\x00\x00\x00\x01\x00\x00" +
			"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
			"\x00\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x00"),
		// The same record owned by example.com., a compression pointer,
		// as a compressing resolver sends it (the check's fast path).
		[]byte("\x00\x00\x81\x00\x00\x01\x00\x00\x00\x01\x00\x00" +
			"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
			"\xc0\x10\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x00"),
	} {
		up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + udpResponder(t, answer)}})
		if err != nil {
			t.Fatal(err)
		}
		q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := up.Resolve(ctx, q)
		cancel()
		up.Close()
		if err == nil || !strings.Contains(err.Error(), "cannot be relayed") {
			t.Fatalf("answer %q: relayed %v, error %v; want the upstream's failure", answer, r, err)
		}
	}
}

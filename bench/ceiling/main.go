// Command ceiling floods a running daemon until every cap it has is full
// at once, and reports its peak resident memory against a ceiling (1 GiB)
// and what a well-behaved client sees meanwhile:
//
//   - connections: -conns of them (the -max-conns cap) less the good
//     client's two, from as many loopback source addresses (127.0.1.0 up)
//     as the -max-conns-per-client cap needs: HTTP/2, QUIC, HTTP/1.1
//     slowloris (a header block that never ends, a byte every few
//     seconds) and raw HTTP/2 ones for the rapid reset;
//   - requests: -requests of them (the -max-requests cap) whose 65000-byte
//     bodies arrive but for their last byte (the most a request can
//     make a handler hold) or trickle a byte every second;
//   - rapid reset: on the raw connections, streams opened and reset at
//     once until the server sends GOAWAY and closes;
//
// then it checks that the caps hold (one more connection from a new
// address is refused, one more request is answered 503), lets everything
// go, and waits for the daemon to recover: the good client answered 200
// again, the daemon's connections and goroutines back to where they were.
//
//	go run ./bench/ceiling -addr HOST:PORT -pid PID -admin HOST:PORT [-conns N -per-client N -requests N]
//
// The counts default to internal/httpserve's default caps; bench/ceiling.sh
// runs it against fresh odoh-target and odoh-proxy processes. Loopback
// only; everything it opens is closed at exit. It exits 1 if a cap did not
// fill or hold, the good client was not answered, the daemon did not
// recover, or the peak RSS (VmHWM) reached the ceiling.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/odohd/odoh/internal/httpserve"
)

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "", "the daemon's HOST:PORT")
	flag.IntVar(&c.pid, "pid", 0, "the daemon's process ID")
	flag.StringVar(&c.admin, "admin", "", "the daemon's admin HOST:PORT (its /metrics)")
	flag.StringVar(&c.prefix, "metrics-prefix", "odoh_target", "the prefix of the daemon's metrics")
	flag.IntVar(&c.conns, "conns", httpserve.DefaultMaxConns, "connections to hold (the daemon's -max-conns)")
	flag.IntVar(&c.perClient, "per-client", httpserve.DefaultMaxConnsPerClient, "connections per source address (the daemon's -max-conns-per-client)")
	flag.IntVar(&c.requests, "requests", httpserve.DefaultMaxRequests, "requests to hold in flight (the daemon's -max-requests)")
	flag.IntVar(&c.resetters, "resetters", 8, "connections that make a rapid reset")
	flag.IntVar(&c.budget, "reset-budget", httpserve.DefaultResetBudget, "the daemon's -reset-budget (reported)")
	flag.StringVar(&c.post, "post", "/dns-query", "path of the in-flight POSTs")
	flag.StringVar(&c.path, "path", "/.well-known/odohconfigs", "path of the good client's GET (answered 200)")
	flag.Int64Var(&c.length, "content-length", 65000, "Content-Length of the in-flight POSTs")
	flag.Float64Var(&c.ceilingMiB, "ceiling", 1024, "the ceiling on peak RSS, in MiB")
	flag.Float64Var(&c.heapMiB, "memory-limit", 800, "the daemon's -memory-limit, in MiB (its Go heap is reported against it)")
	flag.DurationVar(&c.settle, "settle", 3*time.Second, "wait once the caps are full, before the readings")
	flag.DurationVar(&c.recover, "recover-within", 3*time.Minute, "how long the daemon may take to recover (a guard against a hang)")
	flag.Parse()
	name := "daemon"
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/comm"); err == nil {
		name = strings.TrimSpace(string(b))
	}
	c.name = name
	ok, err := run(&c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ceiling: %s: %v\n", name, err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

type config struct {
	addr, admin, prefix, name string
	pid                       int
	conns, perClient          int
	requests, resetters       int
	budget                    int
	post, path                string
	length                    int64
	ceilingMiB, heapMiB       float64
	settle, recover           time.Duration

	tlsConf    *tls.Config
	h3         *http3.Transport
	closers    []io.Closer
	closersMu  sync.Mutex
	streamErrs atomic.Int64
	closing    atomic.Bool // errors from now on are ours
	failed     bool
}

func (c *config) closeLater(cl io.Closer) {
	c.closersMu.Lock()
	c.closers = append(c.closers, cl)
	c.closersMu.Unlock()
}

// closeAll closes everything opened, last opened first (a QUIC
// connection before its UDP socket), one at a time: a burst of QUIC
// CONNECTION_CLOSE packets could overflow the daemon's socket buffer, and
// a lost one would hold its connection until the idle timeout.
func (c *config) closeAll() {
	c.closing.Store(true)
	c.closersMu.Lock()
	cls := c.closers
	c.closers = nil
	c.closersMu.Unlock()
	for i := len(cls) - 1; i >= 0; i-- {
		_ = cls[i].Close()
	}
}

func (c *config) report(format string, args ...any) {
	fmt.Printf("%-12s "+format+"\n", append([]any{c.name}, args...)...)
}

func (c *config) check(ok bool, what string) {
	if !ok {
		c.failed = true
		c.report("FAILED: %s", what)
	}
}

// client is one source address and the connections it holds.
type client struct {
	ip        netip.Addr
	h2        []*http.ClientConn
	h3        []*http3.ClientConn
	slowloris int
	resetter  *rawH2 // nil but for the first -resetters addresses
	udp       *quic.Transport
}

func run(c *config) (bool, error) {
	c.tlsConf = &tls.Config{InsecureSkipVerify: true} // a bench on loopback
	c.h3 = &http3.Transport{TLSClientConfig: c.tlsConf}
	defer c.closeAll()
	mib := func(b float64) float64 { return b / (1 << 20) }

	// The good client: one HTTP/2 and one HTTP/3 connection from
	// 127.0.0.1, held from before the flood to after it.
	good, err := c.goodClient()
	if err != nil {
		return false, fmt.Errorf("the good client: %w", err)
	}
	goodBefore := good.status() // opens its HTTP/3 connection too
	m0, err := c.metrics()
	if err != nil {
		return false, err
	}
	rss0, _, err := memory(c.pid)
	if err != nil {
		return false, err
	}
	c.report("baseline: rss %.1f MiB, heap %.1f MiB, %.0f goroutines, %.0f connections; good client: %s",
		mib(float64(rss0)), mib(m0.heap), m0.goroutines, m0.open, goodBefore)
	c.check(good.last == [2]string{"200", "200"}, "the good client is not answered 200 before the flood")

	var peakHeap atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the Go heap's peak, sampled
		defer close(sampled)
		for {
			if m, err := c.metrics(); err == nil && int64(m.heap) > peakHeap.Load() {
				peakHeap.Store(int64(m.heap))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()

	// Connections.
	start := time.Now()
	clients, err := c.connectAll(c.conns - 2)
	if err != nil {
		return false, err
	}
	var h2n, h3n, slown, rawn int
	for _, cl := range clients {
		h2n += len(cl.h2)
		h3n += len(cl.h3)
		slown += cl.slowloris
		if cl.resetter != nil {
			rawn++
		}
	}
	m1, err := c.metrics()
	if err != nil {
		return false, err
	}
	c.report("connections: %d held (h2 %d, h3 %d, slowloris %d, raw h2 %d) from %d addresses in %.0fs; daemon counts %.0f; one more: %s; good client: %s",
		h2n+h3n+slown+rawn, h2n, h3n, slown, rawn, len(clients), time.Since(start).Seconds(), m1.open, c.oneMoreConn(), good.status())
	c.check(int(m1.open) == c.conns, fmt.Sprintf("the daemon holds %.0f connections, not its cap of %d", m1.open, c.conns))
	c.check(good.ok(), "the good client is not answered 200 while the connections are full")

	// Requests in flight, spread over the clients and both protocols; one
	// in four trickles its body rather than stalling.
	var started sync.WaitGroup
	var trickling int
	for i := range c.requests {
		cl := clients[i%len(clients)]
		k := i / len(clients)
		trickle := i%4 == 3
		if trickle {
			trickling++
		}
		started.Add(1)
		if k%2 == 0 && len(cl.h2) > 0 || len(cl.h3) == 0 {
			c.stall(&started, cl.h2[(k/2)%len(cl.h2)].RoundTrip, trickle)
		} else {
			c.stall(&started, cl.h3[(k/2)%len(cl.h3)].RoundTrip, trickle)
		}
	}
	started.Wait()
	time.Sleep(c.settle)
	if n := c.streamErrs.Load(); n > 0 {
		return false, fmt.Errorf("%d in-flight requests ended early (see above)", n)
	}
	var extra string
	for _, cl := range clients {
		if len(cl.h2) > 0 {
			extra = c.oneMoreRequest(cl.h2[0].RoundTrip)
			break
		}
	}
	c.report("requests: %d in flight (%d bodies stalled before their last byte, %d trickling); one more: %s; good client: %s",
		c.requests, c.requests-trickling, trickling, extra, good.status())
	c.check(extra == "503", "one request more than the cap is not answered 503")
	c.check(good.refused(), "the good client is neither answered 200 nor refused 503 at once while the requests are full")

	// Rapid reset, every cap full: each stream is refused (503) at once,
	// which spends the connection's reset budget.
	start = time.Now()
	type result struct {
		streams int
		ga      *http2.GoAwayFrame
		err     error
	}
	results := make(chan result, len(clients))
	var rr int
	for _, cl := range clients {
		if cl.resetter != nil {
			rr++
			go func() {
				n, ga, err := cl.resetter.rapidReset(c.addr, c.post, 100_000, time.Minute)
				results <- result{n, ga, err}
			}()
		}
	}
	var goaways, most int
	codes := map[http2.ErrCode]int{}
	for range rr {
		r := <-results
		if r.err != nil {
			c.report("rapid reset: %v", r.err)
		}
		if r.ga != nil && r.err == nil {
			goaways++
			codes[r.ga.ErrCode]++
		}
		most = max(most, r.streams)
	}
	m2, err := c.metrics()
	if err != nil {
		return false, err
	}
	// The slots the resetters freed are taken again. The daemon frees a
	// slot once it has closed the connection, which can come just after
	// its GOAWAY reached the resetter: until then a new connection from
	// that address is refused, so each is dialled until one is taken.
	refilled := 0
	for _, cl := range clients {
		if cl.resetter == nil {
			continue
		}
		for deadline := time.Now().Add(c.recover); ; time.Sleep(50 * time.Millisecond) {
			if cl.resetter, err = dialRaw(c.addr, cl.ip); err == nil {
				c.closeLater(cl.resetter)
				refilled++
				break
			}
			if time.Now().After(deadline) {
				c.report("rapid reset: the slot of %s was not free again after %v: %v", cl.ip, c.recover, err)
				break
			}
		}
	}
	c.report("rapid reset: %d connections of %d closed with GOAWAY %v, after at most %d streams each (-reset-budget %d), in %.1fs; %.0f closes for the reset budget counted; %d slots taken again; one more conn: %s; good client: %s",
		goaways, rr, codes, most, c.budget, time.Since(start).Seconds(), m2.resetBudgetCloses-m0.resetBudgetCloses, refilled, c.oneMoreConn(), good.status())
	c.check(goaways == rr, "a rapid reset connection was not closed with GOAWAY")

	// The peak, every cap full.
	time.Sleep(c.settle)
	m3, err := c.metrics()
	if err != nil {
		return false, err
	}
	rss, peak, err := memory(c.pid)
	if err != nil {
		return false, err
	}
	close(stopSampling)
	<-sampled
	c.report("peak: rss %.1f MiB (VmHWM) of a %.0f MiB ceiling, now %.1f MiB; Go heap in use at most %.1f MiB (-memory-limit %.0f MiB); %.0f goroutines, %.0f connections",
		mib(float64(peak)), c.ceilingMiB, mib(float64(rss)), mib(float64(peakHeap.Load())), c.heapMiB, m3.goroutines, m3.open)
	c.check(mib(float64(peak)) < c.ceilingMiB, "the peak RSS reached the ceiling")

	// Let go; the daemon recovers.
	start = time.Now()
	c.closeAll()
	var recovered time.Duration
	for deadline := time.Now().Add(c.recover); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if good.ok() {
			recovered = time.Since(start)
			break
		}
	}
	var back time.Duration
	var m4 metrics
	for deadline := time.Now().Add(c.recover); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if m4, err = c.metrics(); err == nil && m4.open <= m0.open && m4.goroutines <= m0.goroutines*1.1+2 {
			back = time.Since(start)
			break
		}
	}
	rss4, _, err := memory(c.pid)
	if err != nil {
		return false, err
	}
	c.report("released: good client answered 200 after %.2fs; connections %.0f and goroutines %.0f (baseline %.0f, %.0f) after %.1fs; rss %.1f MiB, heap %.1f MiB",
		recovered.Seconds(), m4.open, m4.goroutines, m0.open, m0.goroutines, back.Seconds(), mib(float64(rss4)), mib(m4.heap))
	c.check(recovered > 0, "the good client is not answered 200 after the flood")
	c.check(back > 0, "the daemon's connections or goroutines did not come back to their baseline")
	if !c.failed {
		c.report("ok: every cap held, peak RSS %.0f MiB under %.0f MiB", mib(float64(peak)), c.ceilingMiB)
	}
	return !c.failed, nil
}

// loopback returns 127.0.<block>.<i+1>, carrying into the third byte.
func loopback(block, i int) netip.Addr {
	n := block<<8 + i + 1
	return netip.AddrFrom4([4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)})
}

// connectAll opens n connections from as many addresses as the per-client
// cap needs, a few addresses at a time.
func (c *config) connectAll(n int) ([]*client, error) {
	nClients := (n + c.perClient - 1) / c.perClient
	clients := make([]*client, nClients)
	var wg sync.WaitGroup
	errc := make(chan error, nClients)
	sem := make(chan struct{}, 8) // handshakes in parallel
	for i := range clients {
		cl := &client{ip: loopback(1, i)}
		clients[i] = cl
		k := min(c.perClient, n-i*c.perClient)
		raw := i < c.resetters
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.connect(cl, k, raw); err != nil {
				errc <- fmt.Errorf("client %s: %w", cl.ip, err)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		return nil, err
	}
	return clients, nil
}

// connect opens n connections from cl's address: with raw, first one raw
// HTTP/2 connection for the rapid reset; one in eight a slowloris; of the
// rest, half HTTP/2 and half QUIC (on one UDP socket). Each HTTP/2 and
// QUIC connection makes one request, so that it is fully set up on both
// sides.
func (c *config) connect(cl *client, n int, raw bool) error {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: cl.ip.AsSlice()})
	if err != nil {
		return err
	}
	cl.udp = &quic.Transport{Conn: udp}
	c.closeLater(udp)
	c.closeLater(cl.udp)
	raddr, err := net.ResolveUDPAddr("udp", c.addr)
	if err != nil {
		return err
	}
	for j := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		switch {
		case raw && j == 0:
			if cl.resetter, err = dialRaw(c.addr, cl.ip); err == nil {
				c.closeLater(cl.resetter)
			}
		case j%8 == 7:
			if err = c.slowloris(cl.ip); err == nil {
				cl.slowloris++
			}
		case j%2 == 0:
			var cc *http.ClientConn
			if cc, err = dialH2(ctx, c.addr, cl.ip, c.tlsConf); err == nil {
				c.closeLater(cc)
				cl.h2 = append(cl.h2, cc)
				_, err = get(cc.RoundTrip, c.addr, c.path)
			}
		default:
			var qc *quic.Conn
			qc, err = cl.udp.Dial(ctx, raddr, http3.ConfigureTLSConfig(c.tlsConf.Clone()),
				&quic.Config{MaxIdleTimeout: 10 * time.Minute, KeepAlivePeriod: 20 * time.Second})
			if err == nil {
				c.closeLater(closeFunc(func() error { return qc.CloseWithError(0, "") }))
				cc := c.h3.NewClientConn(qc)
				cl.h3 = append(cl.h3, cc)
				_, err = get(cc.RoundTrip, c.addr, c.path)
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("connection %d: %w", j+1, err)
		}
	}
	return nil
}

// slowloris opens an HTTP/1.1 connection from ip whose header block never
// ends: a byte every 5 s, until the connection is closed.
func (c *config) slowloris(ip netip.Addr) error {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Timeout: 30 * time.Second}
	conf := c.tlsConf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	tc, err := tls.DialWithDialer(d, "tcp", c.addr, conf)
	if err != nil {
		return err
	}
	c.closeLater(tc)
	if _, err := io.WriteString(tc, "GET "+c.path+" HTTP/1.1\r\nHost: ceiling\r\nX-Slow: "); err != nil {
		return err
	}
	go func() {
		for {
			time.Sleep(5 * time.Second)
			if _, err := io.WriteString(tc, "a"); err != nil {
				if !c.closing.Load() {
					c.streamErrs.Add(1)
					fmt.Fprintln(os.Stderr, "ceiling: a slowloris connection closed:", err)
				}
				return
			}
		}
	}()
	return nil
}

// stall starts a POST through roundTrip whose body arrives but for its
// last byte or, with trickle, a byte a second; it marks started once the
// first part of the body is written.
func (c *config) stall(started *sync.WaitGroup, roundTrip func(*http.Request) (*http.Response, error), trickle bool) {
	pr, pw := io.Pipe()
	c.closeLater(pw)
	req, _ := http.NewRequest(http.MethodPost, "https://"+c.addr+c.post, pr)
	req.ContentLength = c.length
	req.Header.Set("Content-Type", "application/oblivious-dns-message")
	first := c.length - 1
	if trickle {
		first = 16
	}
	go func() {
		_, err := pw.Write(make([]byte, first))
		started.Done()
		for sent := first; err == nil && trickle && sent < c.length-1; sent++ {
			time.Sleep(time.Second)
			_, err = pw.Write([]byte{0})
		}
		if err != nil && !c.closing.Load() {
			c.streamErrs.Add(1)
			fmt.Fprintln(os.Stderr, "ceiling: writing a body:", err)
		}
	}()
	go func() {
		resp, err := roundTrip(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %s before its body ended", resp.Status)
		}
		if !c.closing.Load() {
			c.streamErrs.Add(1)
			fmt.Fprintln(os.Stderr, "ceiling: in-flight request:", err)
		}
	}()
}

// oneMoreConn tries one more HTTP/2 connection, from an address of its own.
func (c *config) oneMoreConn() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := dialH2(ctx, c.addr, loopback(2, 0), c.tlsConf)
	if err != nil {
		return "refused"
	}
	defer cc.Close()
	if _, err := get(cc.RoundTrip, c.addr, c.path); err != nil {
		return "refused"
	}
	c.check(false, "a connection beyond the cap was accepted")
	return "ACCEPTED"
}

// oneMoreRequest makes one more request on a held connection; it returns
// the answer's status code.
func (c *config) oneMoreRequest(roundTrip func(*http.Request) (*http.Response, error)) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+c.addr+c.post, strings.NewReader("x"))
	req.Header.Set("Content-Type", "application/oblivious-dns-message")
	resp, err := roundTrip(req)
	if err != nil {
		return "no answer (" + err.Error() + ")"
	}
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// good is the well-behaved client: one HTTP/2 and one HTTP/3 connection,
// each asked for path.
type good struct {
	c      *config
	h2, h3 func(*http.Request) (*http.Response, error)
	last   [2]string
}

func (c *config) goodClient() (*good, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := dialH2(ctx, c.addr, netip.MustParseAddr("127.0.0.1"), c.tlsConf)
	if err != nil {
		return nil, err
	}
	h3t := &http3.Transport{TLSClientConfig: c.tlsConf, QUICConfig: &quic.Config{MaxIdleTimeout: 10 * time.Minute, KeepAlivePeriod: 20 * time.Second}}
	// Never in c's closers: held until the process exits.
	return &good{c: c, h2: cc.RoundTrip, h3: h3t.RoundTrip}, nil
}

// ask asks both connections once and records their answers.
func (g *good) ask() {
	for i, rt := range []func(*http.Request) (*http.Response, error){g.h2, g.h3} {
		code, err := get(rt, g.c.addr, g.c.path)
		if err != nil {
			g.last[i] = "error (" + err.Error() + ")"
		} else {
			g.last[i] = strconv.Itoa(code)
		}
	}
}

func (g *good) status() string {
	g.ask()
	return "h2 " + g.last[0] + ", h3 " + g.last[1]
}

func (g *good) ok() bool {
	g.ask()
	return g.last == [2]string{"200", "200"}
}

// refused: both answered, 200 or the request cap's 503 (asked last by status).
func (g *good) refused() bool {
	for _, s := range g.last {
		if s != "200" && s != "503" {
			return false
		}
	}
	return true
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// dialH2 opens one HTTP/2 connection from ip (its own, never pooled).
func dialH2(ctx context.Context, addr string, ip netip.Addr, tlsConf *tls.Config) (*http.ClientConn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}
	tr := &http.Transport{TLSClientConfig: tlsConf, DialContext: d.DialContext, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	return tr.NewClientConn(ctx, "https", addr)
}

func get(roundTrip func(*http.Request) (*http.Response, error), addr, path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
	resp, err := roundTrip(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Body.Close()
}

// rawH2 is an HTTP/2 connection driven frame by frame.
type rawH2 struct {
	tc     *tls.Conn
	framer *http2.Framer
	enc    *hpack.Encoder
	buf    bytes.Buffer
}

func dialRaw(addr string, ip netip.Addr) (*rawH2, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Timeout: 30 * time.Second}
	tc, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		return nil, err
	}
	r := &rawH2{tc: tc, framer: http2.NewFramer(tc, tc)}
	r.enc = hpack.NewEncoder(&r.buf)
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		tc.Close()
		return nil, err
	}
	if err := r.framer.WriteSettings(); err != nil {
		tc.Close()
		return nil, err
	}
	return r, nil
}

func (r *rawH2) Close() error { return r.tc.Close() }

// rapidReset opens up to n streams, each a POST whose HEADERS frame is
// followed at once by RST_STREAM, while reading what the server sends,
// until its GOAWAY and close. It returns the streams the server took (by
// the GOAWAY's last stream; else those opened) and the GOAWAY (an error if
// the server sent none, or did not close, within the wait).
func (r *rawH2) rapidReset(authority, path string, n int, within time.Duration) (int, *http2.GoAwayFrame, error) {
	var opened atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			select {
			case <-stop:
				return
			default:
			}
			id := uint32(2*i + 1)
			r.buf.Reset()
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", authority}, {":path", path},
				{"content-type", "application/oblivious-dns-message"}, {"content-length", "100"}} {
				_ = r.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			if r.framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.buf.Bytes(), EndHeaders: true}) != nil ||
				r.framer.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return // the server has closed
			}
			opened.Add(1)
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	_ = r.tc.SetReadDeadline(time.Now().Add(within))
	var ga *http2.GoAwayFrame
	var taken int
	for {
		f, err := r.framer.ReadFrame()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return int(opened.Load()), ga, fmt.Errorf("no GOAWAY and close within %v", within)
			case ga == nil:
				return int(opened.Load()), nil, fmt.Errorf("closed without GOAWAY: %w", err)
			}
			return taken, ga, nil
		}
		if g, ok := f.(*http2.GoAwayFrame); ok && ga == nil {
			ga = g
			// The streams the server took: the client may have written
			// more before it saw the GOAWAY.
			taken = int(g.LastStreamID+1) / 2
		}
	}
}

// metrics is what the daemon's /metrics says of it.
type metrics struct {
	heap, goroutines, open, resetBudgetCloses float64
}

func (c *config) metrics() (metrics, error) {
	var m metrics
	resp, err := http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	want := map[string]*float64{
		"go_memstats_heap_inuse_bytes": &m.heap,
		"go_goroutines":                &m.goroutines,
		c.prefix + "_connections_open": &m.open,
		c.prefix + `_connections_closed_total{reason="reset_budget"}`: &m.resetBudgetCloses,
	}
	sc := bufio.NewScanner(resp.Body)
	found := 0
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if p, in := want[name]; ok && in {
			if *p, err = strconv.ParseFloat(v, 64); err != nil {
				return m, err
			}
			found++
		}
	}
	if found < 3 { // the closes appear once counted
		return m, fmt.Errorf("%s/metrics lacks the heap, goroutines or connections", c.admin)
	}
	return m, sc.Err()
}

// memory reads VmRSS and VmHWM (the peak RSS) of a process, in bytes.
func memory(pid int) (rss, peak int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for key, v := range map[string]*int64{"VmRSS:": &rss, "VmHWM:": &peak} {
			if s, ok := strings.CutPrefix(sc.Text(), key); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 10, 64)
				if err != nil {
					return 0, 0, err
				}
				*v = kb << 10
			}
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM for pid %d", pid)
	}
	return rss, peak, nil
}

package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
	"github.com/odohd/odoh/odoh"
)

// The TestFault tests break one part of a running deployment (Unbound ←
// odoh-target ← odoh-proxy ← odoh stub, all real processes) and check what
// a client sees while it is broken and once it is repaired. Each logs one
// line, "fault NAME: RESULT", which `make test` prints.

// recoveryBound is how long after a repair every client query must be
// answered again. It is generous for a shared, loaded machine; the
// measured time is in the result line.
const recoveryBound = 10 * time.Second

// result logs a fault test's result line.
func result(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("fault %s: %s", strings.TrimPrefix(t.Name(), "TestFault"), fmt.Sprintf(format, args...))
}

// stub is a running odoh stub.
type stub struct {
	Addr string
	logs *testlog.Buffer
}

// startStub runs the odoh stub in front of the stack, without its cache
// (so that every query crosses the chain).
func (s *stack) startStub(t *testing.T, extra ...string) *stub {
	t.Helper()
	// The stub binds a port of its own choosing and logs it: a port
	// picked free here could be taken before the stub binds it.
	args := append([]string{"stub", "-listen", "127.0.0.1:0", "-admin", "off", "-log-format", "json", "-cache-size", "0"},
		s.clientArgs(extra...)...)
	logs := startCmd(t, "odoh", args...)
	addr, _ := stubAddrs(t, logs)
	return &stub{Addr: addr, logs: logs}
}

// ask sends one query to the stub over UDP and returns the rcode of the
// answer, or an error when none came.
func (st *stub) ask(name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 8 * time.Second}
	q := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(q, st.Addr)
	if err == nil && r.Id != q.Id {
		err = fmt.Errorf("answer ID %#x for query %#x", r.Id, q.Id)
	}
	return r, err
}

// mustAnswer asks and fails the test unless the answer has the rcode.
func (st *stub) mustAnswer(t *testing.T, name string, qtype uint16, rcode int) *dns.Msg {
	t.Helper()
	r, err := st.ask(name, qtype)
	if err != nil {
		t.Fatalf("%s: no answer from the stub: %v\nstub logs:\n%s", name, err, st.logs)
	}
	if r.Rcode != rcode {
		t.Fatalf("%s: %s, want %s\nstub logs:\n%s", name, dns.RcodeToString[r.Rcode], dns.RcodeToString[rcode], st.logs)
	}
	return r
}

// recovers asks until the answer is NOERROR with the address and returns
// how long that took; it fails the test after recoveryBound.
func (st *stub) recovers(t *testing.T, name string, qtype uint16) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r, err := st.ask(name, qtype)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return time.Since(start)
		}
		if time.Since(start) > recoveryBound {
			t.Fatalf("%s not answered %v after the repair (last: %v %v)\nstub logs:\n%s", name, recoveryBound, r, err, st.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric sums the samples of a Prometheus metric at an admin address whose
// labels contain match.
func metric(t *testing.T, admin, name, match string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, match) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// sealedPost sends a real query through the proxy and returns the proxy's
// status and Proxy-Status.
func (s *stack) sealedPost(t *testing.T, cfg *odoh.Config) (int, string) {
	t.Helper()
	c := s.httpClient(t, false)
	body, _, err := odoh.SealQuery(cfg, query("www.example.test", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := s.post(t, c, body)
	return resp.StatusCode, resp.Header.Get("Proxy-Status")
}

// The target goes away: the proxy answers 502 naming the failure, the stub
// SERVFAIL at once; once a target is back on its address, queries are
// answered again.
func TestFaultTargetDown(t *testing.T) {
	s := newStack(t, stackOptions{})
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)
	cfg := s.configs(t, s.httpClient(t, false))[0]

	s.Target.stop(t, "odoh-target")
	code, ps := s.sealedPost(t, cfg)
	if code != http.StatusBadGateway || !strings.Contains(ps, "error=connection_refused") {
		t.Fatalf("target down: proxy answered %d, Proxy-Status %q; want 502 connection_refused", code, ps)
	}
	began := time.Now()
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeServerFailure)
	servfail := time.Since(began)

	s.restartTarget(t)
	took := st.recovers(t, "www.example.test", dns.TypeA)
	result(t, "proxy %d (%s), stub SERVFAIL in %v; target back: answered after %v",
		code, ps, servfail.Round(time.Millisecond), took.Round(time.Millisecond))
}

// Unbound goes away: the target answers SERVFAIL for what it has not
// cached, and keeps answering what it has; once Unbound is back, queries
// are answered again.
func TestFaultUpstreamDown(t *testing.T) {
	s := newStack(t, stackOptions{})
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)

	s.UnboundServer.Stop()
	began := time.Now()
	st.mustAnswer(t, "mail.example.test", dns.TypeMX, dns.RcodeServerFailure)
	servfail := time.Since(began)
	cached := st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)
	if len(cached.Answer) != 1 {
		t.Fatalf("cached answer %v", cached)
	}
	if up := metric(t, s.Target.Admin, "odoh_target_upstream_errors_total", ""); up == 0 {
		t.Fatal("the target counted no upstream error while Unbound was down")
	}

	s.UnboundServer.Restart()
	took := st.recovers(t, "mail.example.test", dns.TypeMX)
	result(t, "uncached name SERVFAIL in %v, cached name still answered; Unbound back: answered after %v",
		servfail.Round(time.Millisecond), took.Round(time.Millisecond))
}

// The target's seed changes (a new key) and it reloads on SIGHUP: the
// stub's next query is sealed to the old key, the target answers 401, and
// the stub fetches the new configs through the proxy and is answered, in
// that same query.
func TestFaultKeyRotated(t *testing.T) {
	// The proxy drops cached configs on a 401 only when they are older
	// than its minimum age; 1 s keeps the test short.
	s := newStack(t, stackOptions{proxyArgs: []string{"-configs-min-age", "1s"}})
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)
	before := s.configs(t, s.httpClient(t, false))[0]
	time.Sleep(1100 * time.Millisecond) // past the proxy's minimum configs age

	if err := os.WriteFile(s.SeedFile, bytes.Repeat([]byte{0xa7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	rejected := metric(t, s.Target.Admin, "odoh_target_requests_total", `result="key_mismatch"`)
	if err := s.Target.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the target to reload its seed", func() bool {
		return strings.Contains(s.Target.logs.String(), "seed reloaded")
	})
	// The old key is no longer accepted.
	code, _ := s.sealedPost(t, before)
	if code != http.StatusUnauthorized {
		t.Fatalf("a query to the old key got %d, want 401", code)
	}
	r := st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)
	if len(r.Answer) != 1 {
		t.Fatalf("answer %v", r)
	}
	got := metric(t, s.Target.Admin, "odoh_target_requests_total", `result="key_mismatch"`) - rejected
	if got < 2 {
		t.Fatalf("the target refused %v queries with 401, want the test's and the stub's", got)
	}
	after := s.configs(t, s.httpClient(t, false))[0]
	if bytes.Equal(after.KeyID(), before.KeyID()) {
		t.Fatal("the proxy still relays the old configs")
	}
	result(t, "old key refused with 401; the stub's first query after SIGHUP answered through the 401 (configs refetched via the proxy)")
}

// A proxy that does not allow the target refuses with 403 and never
// contacts it; the stub answers SERVFAIL.
func TestFaultTargetNotAllowed(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.Proxy.stop(t, "odoh-proxy")
	s.proxyArgs = replaceArg(s.proxyArgs, "-allow-target", "127.0.0.1:1") // not the target
	s.restartProxy(t)
	before := metric(t, s.Target.Admin, "odoh_target_requests_total", "")

	resp, err := s.httpClient(t, false).Get("https://" + s.Proxy.Listen + odoh.ConfigsPath + "?targethost=" + s.Target.Listen)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ps := resp.Header.Get("Proxy-Status")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(ps, "error=http_request_denied") {
		t.Fatalf("configs for a target not allowed: %d, Proxy-Status %q", resp.StatusCode, ps)
	}
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeServerFailure)
	if n := metric(t, s.Target.Admin, "odoh_target_requests_total", "") - before; n != 0 {
		t.Fatalf("the target saw %v requests through a proxy that does not allow it", n)
	}
	result(t, "proxy 403 (%s), target never contacted, stub SERVFAIL", ps)
}

// Certificates nobody trusts: a target whose certificate the proxy does
// not trust gets 502 tls_certificate_error; a proxy whose certificate the
// stub does not trust gets SERVFAIL from the stub, which logs why.
func TestFaultBadCertificate(t *testing.T) {
	s := newStack(t, stackOptions{})
	other := testca.New(t)
	badCert, badKey := other.Issue(t)
	cfg := s.configs(t, s.httpClient(t, false))[0]

	s.Target.stop(t, "odoh-target")
	s.targetArgs = replaceArg(s.targetArgs, "-cert", badCert)
	s.targetArgs = replaceArg(s.targetArgs, "-key", badKey)
	s.restartTarget(t)
	code, ps := s.sealedPost(t, cfg)
	if code != http.StatusBadGateway || !strings.Contains(ps, "error=tls_certificate_error") {
		t.Fatalf("untrusted target: %d, Proxy-Status %q; want 502 tls_certificate_error", code, ps)
	}

	s.Proxy.stop(t, "odoh-proxy")
	s.proxyArgs = replaceArg(s.proxyArgs, "-cert", badCert)
	s.proxyArgs = replaceArg(s.proxyArgs, "-key", badKey)
	s.restartProxy(t)
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeServerFailure)
	waitFor(t, "the stub to log the certificate failure", func() bool {
		return strings.Contains(st.logs.String(), "certificate")
	})
	result(t, "untrusted target: proxy %d (%s); untrusted proxy: stub SERVFAIL, logged the certificate error", code, ps)
}

// The proxy restarts while the stub is under steady load: queries in
// flight when it stops are answered (SERVFAIL while it is away, never
// silence), and once it is back every query is answered: none lost.
func TestFaultProxyRestartedMidLoad(t *testing.T) {
	s := newStack(t, stackOptions{proxyArgs: []string{"-client-rate", "0", "-max-concurrent-per-client", "-1"}})
	st := s.startStub(t)
	st.mustAnswer(t, "www.example.test", dns.TypeA, dns.RcodeSuccess)

	type outcome struct {
		at    time.Time
		rcode int // -1: no answer
	}
	var mu sync.Mutex
	var outcomes []outcome
	var stopLoad atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := []string{"www.example.test", "mail.example.test"}
			for i := 0; !stopLoad.Load(); i++ {
				r, err := st.ask(names[(i+w)%2], []uint16{dns.TypeA, dns.TypeMX}[(i+w)%2])
				o := outcome{at: time.Now(), rcode: -1}
				if err == nil {
					o.rcode = r.Rcode
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	s.Proxy.stop(t, "odoh-proxy")
	s.restartProxy(t)
	back := time.Now()
	time.Sleep(3 * time.Second)
	// On a loaded machine the first answer may take longer than that;
	// the load goes on until one comes, within recoveryBound.
	answeredSinceBack := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range outcomes {
			if o.at.After(back) && o.rcode == dns.RcodeSuccess {
				return true
			}
		}
		return false
	}
	for !answeredSinceBack() && time.Since(back) < recoveryBound {
		time.Sleep(50 * time.Millisecond)
	}
	stopLoad.Store(true)
	wg.Wait()

	var before, during, after, lost, lostAfter, failedAfter int
	var lastFailure time.Time
	for _, o := range outcomes {
		switch {
		case o.rcode == -1:
			lost++
			if o.at.After(back) {
				lostAfter++
			}
		case o.at.Before(back) && o.rcode == dns.RcodeSuccess:
			before++
		case o.at.Before(back):
			during++
		case o.rcode == dns.RcodeSuccess:
			after++
		default:
			failedAfter++
			lastFailure = o.at
		}
	}
	if lost != 0 {
		t.Fatalf("%d queries got no answer at all (%d of them after the proxy was back)", lost, lostAfter)
	}
	if after == 0 {
		t.Fatal("no query answered after the proxy came back")
	}
	recovery := time.Duration(0)
	if failedAfter > 0 {
		recovery = lastFailure.Sub(back)
		if recovery > recoveryBound {
			t.Fatalf("SERVFAIL %v after the proxy was back", recovery)
		}
	}
	result(t, "%d queries: %d answered before the restart, %d SERVFAIL while it was away, %d answered after it was back "+
		"(%d SERVFAIL in its first %v), 0 lost", len(outcomes), before, during, after, failedAfter, recovery.Round(time.Millisecond))
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func indexOf(args []string, flag string) int {
	for i, a := range args {
		if a == flag {
			return i
		}
	}
	return -1
}

// replaceArg sets the value of flag in args.
func replaceArg(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	out[indexOf(out, flag)+1] = value
	return out
}

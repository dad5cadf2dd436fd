// Package testunbound starts a real Unbound resolver for tests.
//
// [Start] runs /usr/sbin/unbound (Debian package "unbound") in the
// foreground on 127.0.0.1 at a free port, UDP and TCP alike, with a
// configuration written into t.TempDir(): no chroot, no user switch, no
// remote control, no DNSSEC trust anchor, only the "iterator" module, and
//
//	local-zone: "." refuse
//
// so that it answers only from the local data the test gives it: every
// other name gets REFUSED at once and nothing is ever sent beyond the
// machine. It returns once Unbound answers a query, and stops it when the
// test ends. Unbound's log is shown if the test fails.
//
//	addr := testunbound.Start(t, testunbound.Options{
//		Zones:      []string{"test."},
//		LocalData:  []string{"a.test. 300 IN A 192.0.2.1"},
//		LargeNames: []string{"big.test."}, // answer > 512 bytes: TC=1 over plain UDP
//	})
//	// addr is "127.0.0.1:PORT"
//
// Without the unbound binary the test is skipped, or fails when the
// environment has CI=true (CI must run these tests).
package testunbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/dualport"
)

// DefaultBinary is where Debian installs Unbound; a binary named
// "unbound" on PATH is preferred.
const DefaultBinary = "/usr/sbin/unbound"

// LargeRecords is how many TXT records each of Options.LargeNames gets.
// Each record carries LargeRecordLen bytes of text, so the answer is about
// 1,000 bytes: more than the 512 bytes of plain UDP, less than the
// 1,232-byte EDNS buffer that Unbound advertises by default.
const (
	LargeRecords   = 16
	LargeRecordLen = 50
)

// startTimeout bounds how long Start waits for Unbound to answer.
const startTimeout = 15 * time.Second

// Options configures the server.
type Options struct {
	// Zones are served as "static" local zones: names in them without
	// local data get NXDOMAIN (or NODATA) instead of REFUSED. E.g. "test.".
	Zones []string
	// LocalData are records in zone-file syntax, e.g.
	// "a.test. 300 IN A 192.0.2.1". They must not contain single quotes.
	LocalData []string
	// LargeNames each get LargeRecords TXT records (see LargeTXT), so
	// that plain-UDP answers are truncated (TC=1) and TCP answers are not.
	LargeNames []string
	// ExtraConfig lines are added verbatim to the "server:" clause.
	ExtraConfig []string
	// DoHCertFile and DoHKeyFile, when set, have Unbound serve DNS over
	// HTTPS (HTTP/2, path /dns-query) too, with this certificate, on a
	// port of its own: Server.DoHAddr.
	DoHCertFile, DoHKeyFile string
}

// LargeTXT returns the text of the i-th TXT record Start adds to each of
// Options.LargeNames (0 <= i < LargeRecords).
func LargeTXT(i int) string {
	s := fmt.Sprintf("record-%02d-", i)
	return s + strings.Repeat("x", LargeRecordLen-len(s))
}

// Start runs Unbound with opts and returns its "127.0.0.1:PORT".
func Start(t testing.TB, opts Options) string {
	t.Helper()
	return StartServer(t, opts).Addr
}

// Server is a running Unbound that a test can stop and start again on the
// same address: an upstream outage.
type Server struct {
	// Addr is "127.0.0.1:PORT", the same across restarts.
	Addr string
	// DoHAddr is "127.0.0.1:PORT" of DNS over HTTPS, with
	// Options.DoHCertFile; empty without.
	DoHAddr string

	t    testing.TB
	bin  string
	dir  string
	stop func()
}

// Stop stops Unbound and waits for it to exit; it answers nothing until
// Restart.
func (s *Server) Stop() {
	s.stop()
}

// Restart starts Unbound again on its address, with the same
// configuration, and returns once it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	stop, err := run(s.t, s.bin, s.dir, s.Addr)
	if err != nil {
		s.t.Fatalf("testunbound: restarting: %v\n%s", err, logTail(s.dir))
	}
	s.stop = stop
}

// StartServer is Start returning the Server, for tests that stop and
// restart it.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := binary()
	if bin == "" {
		msg := "testunbound: unbound not installed (apt-get install unbound)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var lastErr error
	// Unbound binds its ports itself: one found free here may be taken
	// before it does, and then it starts again on others.
	for range 3 {
		port, err := dualport.FreePort("127.0.0.1")
		if err != nil {
			t.Fatalf("testunbound: finding a free port: %v", err)
		}
		dohPort := 0
		if opts.DoHCertFile != "" {
			if dohPort, err = dualport.FreePort("127.0.0.1"); err != nil {
				t.Fatalf("testunbound: finding a free port: %v", err)
			}
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := os.WriteFile(filepath.Join(dir, "unbound.conf"), []byte(config(dir, port, dohPort, opts)), 0o600); err != nil {
			t.Fatalf("testunbound: writing config: %v", err)
		}
		var stop func()
		if stop, lastErr = run(t, bin, dir, addr); lastErr == nil {
			s := &Server{Addr: addr, t: t, bin: bin, dir: dir, stop: stop}
			if dohPort != 0 {
				s.DoHAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(dohPort))
			}
			return s
		}
	}
	t.Fatalf("testunbound: %v\n%s", lastErr, logTail(dir))
	return nil
}

func binary() string {
	if p, err := exec.LookPath("unbound"); err == nil {
		return p
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary
	}
	return ""
}

// run starts Unbound and waits until it answers; on success it registers
// its stop with t.Cleanup and returns it (a stop of an exited Unbound
// returns at once).
func run(t testing.TB, bin, dir, addr string) (func(), error) {
	cmd := exec.Command(bin, "-d", "-c", filepath.Join(dir, "unbound.conf"))
	cmd.Dir = dir
	setPdeathsig(cmd)
	out, err := os.Create(filepath.Join(dir, "unbound.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	probe := new(dns.Msg).SetQuestion(".", dns.TypeSOA)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("unbound exited during start-up (%s)", cmd.ProcessState)
		case <-ctx.Done():
			stop()
			return nil, errors.New("unbound did not answer within " + startTimeout.String())
		default:
		}
		if _, _, err := c.ExchangeContext(ctx, probe, addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("testunbound: %s\n%s", addr, logTail(dir))
		}
	})
	return stop, nil
}

func config(dir string, port, dohPort int, opts Options) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "\t"+format+"\n", args...) }
	b.WriteString("server:\n")
	line("interface: 127.0.0.1")
	line("port: %d", port)
	line("do-ip4: yes")
	line("do-ip6: no")
	line("do-udp: yes")
	line("do-tcp: yes")
	line("chroot: \"\"")
	line("username: \"\"")
	line("directory: %q", dir)
	line("pidfile: %q", filepath.Join(dir, "unbound.pid"))
	line("logfile: %q", filepath.Join(dir, "unbound.log"))
	line("use-syslog: no")
	line("verbosity: 1")
	line("num-threads: 1")
	line("so-reuseport: no")
	line("access-control: 127.0.0.0/8 allow")
	line("do-not-query-localhost: no")
	line("module-config: \"iterator\"")
	line("local-zone: \".\" refuse")
	for _, z := range opts.Zones {
		line("local-zone: %q static", z)
	}
	for _, rr := range opts.LocalData {
		line("local-data: '%s'", rr)
	}
	for _, name := range opts.LargeNames {
		for i := range LargeRecords {
			line("local-data: '%s 300 IN TXT \"%s\"'", name, LargeTXT(i))
		}
	}
	if dohPort != 0 {
		line("interface: 127.0.0.1@%d", dohPort)
		line("https-port: %d", dohPort)
		line("tls-service-key: %q", opts.DoHKeyFile)
		line("tls-service-pem: %q", opts.DoHCertFile)
	}
	for _, l := range opts.ExtraConfig {
		line("%s", l)
	}
	b.WriteString("remote-control:\n\tcontrol-enable: no\n")
	return b.String()
}

// logTail returns the end of Unbound's log and output, for failures.
func logTail(dir string) string {
	var b strings.Builder
	for _, name := range []string{"unbound.out", "unbound.log"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 4096 {
			data = data[len(data)-4096:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s", name, data)
	}
	return b.String()
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/pki"
)

// writeLeaf issues a fresh certificate for the loopback names from the
// CA in caDir (its cert.pem and key.pem), into dir.
func writeLeaf(dir, caDir string) error {
	certPEM, err := os.ReadFile(filepath.Join(caDir, "cert.pem"))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(caDir, "key.pem"))
	if err != nil {
		return err
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return err
	}
	der, key, err := ca.Issue(loopback, 24*time.Hour)
	if err != nil {
		return err
	}
	// Key first, then the certificate, each by rename: a reload in
	// between sees a pair that does not match and keeps the old one.
	if err := writeAtomic(filepath.Join(dir, "key.pem"), pki.KeyPEM(key), 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "cert.pem"), pki.CertPEM(der), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// relay forwards UDP DNS queries to upstream and their answers back,
// counting the queries it receives, until SIGTERM or SIGINT.
func relay(upstream, countFile string) error {
	if upstream == "" || countFile == "" {
		return errors.New("relay: -upstream and -count-file are required")
	}
	up, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	fmt.Println(pc.LocalAddr())
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		close(done)
		pc.Close()
	}()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			_ = writeAtomic(countFile, []byte(strconv.FormatInt(n.Load(), 10)+"\n"), 0o644)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	buf := make([]byte, 65535)
	for {
		m, from, err := pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-done:
				_ = writeAtomic(countFile, []byte(strconv.FormatInt(n.Load(), 10)+"\n"), 0o644)
				return nil
			default:
				return err
			}
		}
		n.Add(1)
		q := append([]byte(nil), buf[:m]...)
		// One socket per query, as the target's UDP upstream does: the
		// answer goes back to whoever asked.
		go func() {
			c, err := net.DialUDP("udp", nil, up)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(q); err != nil {
				return
			}
			a := make([]byte, 65535)
			k, err := c.Read(a)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(a[:k], from)
		}()
	}
}

// probe asks addr for names (comma-separated, in turn) every interval
// until SIGTERM or SIGINT and prints one line per query once answered or
// lost.
func probe(addr, names string, every, timeout time.Duration) error {
	if addr == "" || names == "" {
		return errors.New("probe: -addr and -name are required")
	}
	list := strings.Split(names, ",")
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(every)
	defer t.Stop()
	c := &dns.Client{Net: "udp", Timeout: timeout}
	for i := 0; ; i++ {
		select {
		case <-sig:
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			return out.Flush()
		case <-t.C:
		}
		wg.Add(1)
		go func(sent time.Time, name string) {
			defer wg.Done()
			q := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
			r, rtt, err := c.Exchange(q, addr)
			rcode := "lost"
			if err == nil {
				rcode = dns.RcodeToString[r.Rcode]
			}
			mu.Lock()
			fmt.Fprintf(out, "%d %s %.3f\n", sent.UnixMilli(), rcode, float64(rtt)/float64(time.Millisecond))
			mu.Unlock()
		}(time.Now(), list[i%len(list)])
	}
}

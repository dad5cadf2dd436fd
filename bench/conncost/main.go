// Command conncost measures what a client can make a running daemon hold:
// the resident memory (RSS, from /proc) of the daemon's process per idle
// HTTP/2 connection, per idle HTTP/3 connection, and per request in
// flight (a stream whose body is still arriving: all but its last byte
// sent, or -sent bytes of it). bench/conncost.sh runs it against fresh
// odoh-target and odoh-proxy processes, one mode each, and prints the
// figures the default connection caps are derived from.
//
//	go run ./bench/conncost -addr HOST:PORT -pid PID -mode h2|h3|inflight -n N [-sent B]
//
// It prints one line: mode, count, RSS before and after, and the cost per
// unit in KiB; with -admin, the Go heap in use per unit too (what the
// daemon's soft memory limit counts, resident or not). Loopback only;
// every connection is closed at exit.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func main() {
	addr := flag.String("addr", "", "the daemon's HOST:PORT")
	pid := flag.Int("pid", 0, "the daemon's process ID")
	mode := flag.String("mode", "h2", "h2, h3 (idle connections) or inflight (requests on HTTP/2)")
	n := flag.Int("n", 1000, "connections (h2, h3) or requests (inflight)")
	path := flag.String("path", "/.well-known/odohconfigs", "path of the one request on each idle connection")
	post := flag.String("post", "/dns-query", "path of the in-flight POSTs")
	length := flag.Int64("content-length", 65000, "Content-Length of the in-flight POSTs")
	sent := flag.Int64("sent", -1, "bytes of each in-flight body sent before it stalls (-1: all but the last)")
	settle := flag.Duration("settle", 3*time.Second, "wait before each RSS reading")
	admin := flag.String("admin", "", "the daemon's admin HOST:PORT, for its Go heap (go_memstats_heap_inuse_bytes)")
	flag.Parse()
	if *sent < 0 || *sent >= *length {
		*sent = *length - 1
	}
	if err := run(*addr, *pid, *mode, *n, *path, *post, *length, *sent, *settle, *admin); err != nil {
		fmt.Fprintln(os.Stderr, "conncost:", err)
		os.Exit(1)
	}
}

func run(addr string, pid int, mode string, n int, path, post string, length, sent int64, settle time.Duration, admin string) error {
	tlsConf := &tls.Config{InsecureSkipVerify: true} // a bench on loopback
	time.Sleep(settle)
	before, err := rss(pid)
	if err != nil {
		return err
	}
	heapBefore, err := heap(admin)
	if err != nil {
		return err
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	switch mode {
	case "h2":
		for i := range n {
			cc, c, err := dialH2(addr, tlsConf)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			closers = append(closers, c)
			if err := getH2(cc, addr, path); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
	case "h3":
		tr := &http3.Transport{TLSClientConfig: tlsConf}
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			qc, err := quic.DialAddr(ctx, addr, http3.ConfigureTLSConfig(tlsConf.Clone()), &quic.Config{MaxIdleTimeout: 5 * time.Minute, KeepAlivePeriod: 20 * time.Second})
			cancel()
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			closers = append(closers, closeFunc(func() error { return qc.CloseWithError(0, "") }))
			cc := tr.NewClientConn(qc)
			req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	case "inflight":
		// Streams of 100 per connection (the most an HTTP/2 client opens
		// before the SETTINGS frame), each a POST whose body stalls after
		// sent bytes (by default all but its last byte: the worst a
		// request in flight can cost); its handler waits in the body
		// read, holding what it has read.
		const perConn = 100
		var closing atomic.Bool
		var wg sync.WaitGroup
		started := make(chan error, n)
		for i := 0; i < n; i += perConn {
			cc, c, err := dialH2(addr, tlsConf)
			if err != nil {
				return err
			}
			closers = append(closers, c)
			for range min(perConn, n-i) {
				pr, pw := io.Pipe()
				closers = append(closers, pw)
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPost, "https://"+addr+post, pr)
					req.ContentLength = length
					req.Header.Set("Content-Type", "application/oblivious-dns-message")
					go func() {
						_, err := pw.Write(make([]byte, sent))
						started <- err
					}()
					resp, err := cc.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
						err = fmt.Errorf("answered %s before its body ended", resp.Status)
					}
					if !closing.Load() {
						fmt.Fprintln(os.Stderr, "conncost: in-flight request:", err)
					}
				})
			}
		}
		for range n {
			if err := <-started; err != nil {
				return err
			}
		}
		defer wg.Wait()
		defer closing.Store(true)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	time.Sleep(settle)
	after, err := rss(pid)
	if err != nil {
		return err
	}
	heapAfter, err := heap(admin)
	if err != nil {
		return err
	}
	label := mode
	if mode == "inflight" && sent < length-1 {
		label = fmt.Sprintf("trickle%d", sent) // a body that stalls early
	}
	fmt.Printf("%-10s n=%-6d rss_before=%6.1fMiB rss_after=%6.1fMiB per_unit=%6.1fKiB",
		label, n, float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(n)/1024)
	if admin != "" {
		fmt.Printf(" heap_per_unit=%6.1fKiB", (heapAfter-heapBefore)/float64(n)/1024)
	}
	fmt.Println()
	return nil
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// dialH2 opens one HTTP/2 connection (its own, never pooled).
func dialH2(addr string, tlsConf *tls.Config) (*http.ClientConn, io.Closer, error) {
	tr := &http.Transport{TLSClientConfig: tlsConf, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := tr.NewClientConn(ctx, "https", addr)
	if err != nil {
		return nil, nil, err
	}
	return cc, cc, nil
}

func getH2(cc *http.ClientConn, addr, path string) error {
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// heap reads go_memstats_heap_inuse_bytes from the admin listener at
// admin; 0 without one.
func heap(admin string) (float64, error) {
	if admin == "" {
		return 0, nil
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes at %s", admin)
}

// rss reads VmRSS of a process, in bytes.
func rss(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

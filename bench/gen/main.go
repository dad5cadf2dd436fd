// Command gen prepares the inputs of the bench scripts: a self-signed
// certificate for the target, and many distinct pre-encrypted ODoH query
// bodies (plus the plain DoH bodies of the same queries) for h2load; and
// for bench/soak.sh, certificates to reload, a counting relay in front of
// the upstream and a prober that times recovery.
//
//	go run ./bench/gen cert -dir DIR
//	    writes DIR/cert.pem and DIR/key.pem for 127.0.0.1 and localhost
//	go run ./bench/gen cert -dir DIR -sign-with CADIR
//	    writes a fresh DIR/cert.pem and DIR/key.pem issued by CADIR's
//	go run ./bench/gen relay -upstream HOST:PORT -count-file FILE
//	    relays UDP DNS to HOST:PORT, printing its address, and keeps the
//	    number of queries received in FILE (an upstream's query count,
//	    also while the upstream is down)
//	go run ./bench/gen probe -addr HOST:PORT -name NAME[,NAME…] [-every D] [-timeout D]
//	    asks for the names in turn, one every D, until stopped, printing
//	    "UNIX_MS RCODE MS" per query by send time (RCODE "lost" when
//	    unanswered)
//	go run ./bench/gen port
//	    prints a port that is free on 127.0.0.1 for both TCP and UDP now
//	    (for a server such as Unbound that cannot be told to take port 0)
//	go run ./bench/gen queries -configs URL|FILE [-ca FILE] -names FILE -n N -out DIR
//	    fetches the target's configs (or reads them from FILE) and writes
//	    DIR/odoh-I.bin and DIR/doh-I.bin for I in [0, N), query I asking
//	    for name I mod len(names), type A, with a random DNS ID.
//	    With -ohttp-keys URL|FILE and -ohttp-authority HOST[:PORT] it also
//	    writes DIR/ohttp-I.bin: the same query as a DoH POST to that
//	    authority's /dns-query in Binary HTTP, encapsulated to the gateway's
//	    key configuration (Oblivious HTTP).
//
// Query bodies are sealed with odoh.SealQuery, as a real client would, so
// each carries its own HPKE encapsulation.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/internal/dualport"
	"github.com/odohd/odoh/internal/pki"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: gen cert|queries [flags]")
	}
	switch args[0] {
	case "cert":
		fs := flag.NewFlagSet("cert", flag.ContinueOnError)
		dir := fs.String("dir", ".", "output directory")
		signer := fs.String("sign-with", "", "directory of a cert.pem and key.pem to issue the certificate from (default: self-signed)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *signer != "" {
			return writeLeaf(*dir, *signer)
		}
		return writeCert(*dir)
	case "relay":
		fs := flag.NewFlagSet("relay", flag.ContinueOnError)
		upstream := fs.String("upstream", "", "DNS server to relay to (host:port, UDP)")
		count := fs.String("count-file", "", "file the number of queries received is written to, every 100 ms")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return relay(*upstream, *count)
	case "probe":
		fs := flag.NewFlagSet("probe", flag.ContinueOnError)
		addr := fs.String("addr", "", "DNS server to probe (host:port, UDP)")
		name := fs.String("name", "", "names to ask for in turn (type A; comma-separated)")
		every := fs.Duration("every", 20*time.Millisecond, "interval between queries")
		timeout := fs.Duration("timeout", 5*time.Second, "a query unanswered this long is lost")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return probe(*addr, *name, *every, *timeout)
	case "port":
		return freePort()
	case "queries":
		fs := flag.NewFlagSet("queries", flag.ContinueOnError)
		configs := fs.String("configs", "", "configs URL (https://…/.well-known/odohconfigs) or file")
		caFile := fs.String("ca", "", "CA certificate (PEM) to trust when fetching configs")
		namesFile := fs.String("names", "", "file of names to ask for, one a line")
		n := fs.Int("n", 64, "number of distinct queries")
		out := fs.String("out", ".", "output directory")
		ohttpKeys := fs.String("ohttp-keys", "", "OHTTP key configuration URL (application/ohttp-keys) or file; empty: no ohttp-I.bin")
		ohttpAuthority := fs.String("ohttp-authority", "", "the gateway's DoH authority (HOST[:PORT]) named inside the OHTTP queries")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := writeQueries(*configs, *caFile, *namesFile, *n, *out); err != nil {
			return err
		}
		if *ohttpKeys == "" {
			return nil
		}
		return writeOHTTPQueries(*ohttpKeys, *caFile, *ohttpAuthority, *namesFile, *n, *out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// loopback are the names the benchmarks' certificates are for.
var loopback = []string{"localhost", "127.0.0.1", "::1"}

// writeCert writes a self-signed certificate for the loopback names, which
// is also the CA that the daemons and soak's fresh leaves trust.
func writeCert(dir string) error {
	ca, err := pki.NewCA("odoh bench", 24*time.Hour, loopback...)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pki.KeyPEM(ca.Key), 0o600)
}

// freePort prints a port that TCP and UDP both could bind on 127.0.0.1.
func freePort() error {
	port, err := dualport.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	fmt.Println(port)
	return nil
}

// writeOHTTPQueries writes DIR/ohttp-I.bin (see the package doc).
func writeOHTTPQueries(keysSrc, caFile, authority, namesFile string, n int, out string) error {
	if authority == "" {
		return errors.New("-ohttp-keys needs -ohttp-authority")
	}
	raw, err := readConfigs(keysSrc, caFile)
	if err != nil {
		return err
	}
	cfgs, err := ohttp.ParseKeyConfigs(raw)
	if err != nil {
		return err
	}
	names, err := readNames(namesFile)
	if err != nil {
		return err
	}
	for i := range n {
		m := new(dns.Msg).SetQuestion(names[i%len(names)], dns.TypeA)
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		r := &bhttp.Request{Method: "POST", Scheme: "https", Authority: authority, Path: odoh.QueryPath,
			Header: bhttp.Fields{
				{Name: "accept", Value: odoh.DoHContentType},
				{Name: "content-type", Value: odoh.DoHContentType},
			},
			Content: wire}
		inner, err := r.Append(nil, bhttp.Encoding{Truncate: true})
		if err != nil {
			return err
		}
		msg, _, err := ohttp.EncapsulateRequest(cfgs[0], inner)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("ohttp-%d.bin", i)), msg, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readConfigs(src, caFile string) ([]byte, error) {
	if !strings.HasPrefix(src, "https://") {
		return os.ReadFile(src)
	}
	tlsConf := &tls.Config{}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("%s holds no certificate", caFile)
		}
		tlsConf.RootCAs = pool
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
	resp, err := c.Get(src)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching configs: status %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<16))
}

func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
			names = append(names, dns.Fqdn(s))
		}
	}
	if len(names) == 0 && sc.Err() == nil {
		return nil, fmt.Errorf("%s names nothing", path)
	}
	return names, sc.Err()
}

func writeQueries(configsSrc, caFile, namesFile string, n int, out string) error {
	raw, err := readConfigs(configsSrc, caFile)
	if err != nil {
		return err
	}
	cfgs, err := odoh.ParseConfigs(raw)
	if err != nil {
		return err
	}
	names, err := readNames(namesFile)
	if err != nil {
		return err
	}
	for i := range n {
		m := new(dns.Msg).SetQuestion(names[i%len(names)], dns.TypeA)
		wire, err := m.Pack()
		if err != nil {
			return err
		}
		msg, _, err := odoh.SealQuery(cfgs[0], wire)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("odoh-%d.bin", i)), msg, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("doh-%d.bin", i)), wire, 0o644); err != nil {
			return err
		}
	}
	return nil
}

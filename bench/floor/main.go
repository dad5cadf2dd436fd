// Command floor runs the bare servers that bench/ measures our daemons
// against: what a hop costs with nothing but the work it cannot avoid.
//
//	floor target -listen ADDR -cert FILE -key FILE -names FILE
//	    a net/http TLS + HTTP/2 server doing only a target's HPKE work:
//	    POST /dns-query opens the ODoH query, looks its question up in a
//	    table of pre-packed answers (qI.bench.test. A 192.0.2.(I%250+1),
//	    the names of FILE in order, as bench/lib.sh's zone) and seals the
//	    answer; GET /.well-known/odohconfigs serves its random key's config.
//	floor relay -listen ADDR -cert FILE -key FILE -ca FILE
//	    a plain net/http forwarding relay: POST /dns-query?targethost=H&
//	    targetpath=P is read, POSTed to https://H/P over a pooled HTTP/2
//	    client trusting -ca, and the answer's status, Content-Type and
//	    body are copied back. No policy, no limits, no metrics.
//
// Each logs {"listen":"ADDR"} on stderr once it serves, as the daemons do.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/odoh"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: floor target|relay [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	certFile := fs.String("cert", "", "certificate (PEM)")
	keyFile := fs.String("key", "", "private key (PEM)")
	names := fs.String("names", "", "target: the names to answer, one a line")
	caFile := fs.String("ca", "", "relay: CA certificate (PEM) of the target")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var h http.Handler
	var err error
	switch args[0] {
	case "target":
		h, err = newTarget(*names)
	case "relay":
		h, err = newRelay(*caFile)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]string{"listen": ln.Addr().String()})
	fmt.Fprintf(os.Stderr, "%s\n", line)
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}},
		ReadHeaderTimeout: 10 * time.Second}
	return srv.ServeTLS(ln, "", "")
}

// floorTarget answers ODoH queries from pre-packed answers.
type floorTarget struct {
	key     *odoh.PrivateKey
	configs []byte
	answers map[string][]byte // question section (after the header) → answer
}

func newTarget(namesFile string) (*floorTarget, error) {
	key, err := odoh.GenerateKey(odoh.DefaultSuite())
	if err != nil {
		return nil, err
	}
	configs, err := odoh.MarshalConfigs(key.Config())
	if err != nil {
		return nil, err
	}
	t := &floorTarget{key: key, configs: configs, answers: map[string][]byte{}}
	f, err := os.Open(namesFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		name := dns.Fqdn(strings.TrimSpace(sc.Text()))
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		r := new(dns.Msg).SetReply(q)
		r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(192, 0, 2, byte(i%250+1))})
		qw, err := q.Pack()
		if err != nil {
			return nil, err
		}
		rw, err := r.Pack()
		if err != nil {
			return nil, err
		}
		t.answers[string(qw[12:])] = rw
	}
	return t, sc.Err()
}

func (t *floorTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == odoh.ConfigsPath {
		w.Header().Set("Content-Type", odoh.ConfigsContentType)
		_, _ = w.Write(t.configs)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	m, err := odoh.ParseMessage(body)
	if err != nil {
		http.Error(w, "parse", http.StatusBadRequest)
		return
	}
	q, err := t.key.OpenQuery(m)
	if err != nil || len(q.DNS) < 12 {
		http.Error(w, "open", http.StatusBadRequest)
		return
	}
	a, ok := t.answers[string(q.DNS[12:])]
	if !ok {
		http.Error(w, "unknown name", http.StatusNotFound)
		return
	}
	a = append([]byte(nil), a...)
	copy(a[:2], q.DNS[:2]) // the query's ID
	resp, err := q.SealResponse(a)
	if err != nil {
		http.Error(w, "seal", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", odoh.ContentType)
	_, _ = w.Write(resp)
}

// floorRelay forwards queries as the plainest net/http relay would.
type floorRelay struct{ client *http.Client }

func newRelay(caFile string) (*floorRelay, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	return &floorRelay{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (p *floorRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, path := r.URL.Query().Get("targethost"), r.URL.Query().Get("targetpath")
	if r.Method != http.MethodPost || host == "" || path == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<17))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "https://"+host+path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, "bad target", http.StatusBadRequest)
		return
	}
	req.Header.Set("Content-Type", odoh.ContentType)
	req.Header.Set("Accept", odoh.ContentType)
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, "upstream", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

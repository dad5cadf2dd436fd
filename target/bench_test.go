package target_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/testunbound"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
	"github.com/odohd/odoh/target"
)

// discardWriter is a reusable http.ResponseWriter, so that the benchmark
// counts the handler's allocations, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

// body is a reusable request body.
type body struct{ bytes.Reader }

func (*body) Close() error { return nil }

// benchRequest is one benchmark goroutine's request, body and writer,
// reused from query to query so that the benchmark counts the handler's
// allocations, not its own.
type benchRequest struct {
	w   *discardWriter
	rb  *body
	req *http.Request
}

func newBenchRequest(ctx context.Context, path, ct string) *benchRequest {
	rb := &body{}
	req := (&http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: path},
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{"Content-Type": {ct}}, Body: rb,
	}).WithContext(ctx)
	return &benchRequest{w: &discardWriter{h: make(http.Header)}, rb: rb, req: req}
}

// serve has serve answer the query in bb and returns the status.
func (r *benchRequest) serve(serve func(http.ResponseWriter, *http.Request), bb []byte) int {
	r.rb.Reset(bb)
	r.req.ContentLength = int64(len(bb))
	clear(r.w.h)
	r.w.status = 0
	serve(r.w, r.req)
	return r.w.status
}

// benchHandler measures one request as the h2 server hands it to h:
// answered from the local zone, 256 distinct queries in turn.
func benchHandler(b *testing.B, h *target.Handler, path, ct string, seal func(wire []byte) []byte) {
	benchServe(b, h, path, ct, seal, func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
}

// benchServe is benchHandler with each request served by serve.
func benchServe(b *testing.B, h *target.Handler, path, ct string, seal func(wire []byte) []byte, serve func(http.ResponseWriter, *http.Request)) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = seal(query(b, "www.zone.test.", dns.TypeA, uint16(i)))
	}
	r := newBenchRequest(b.Context(), path, ct)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if st := r.serve(serve, bodies[i%len(bodies)]); st != http.StatusOK {
			b.Fatalf("status %d", st)
		}
	}
}

// BenchmarkHandler reports the handler's time and allocations per query
// (make bench prints the ODoH allocs/op).
func BenchmarkHandler(b *testing.B) {
	// odohHandler is a zone handler and a sealer of ODoH queries to it.
	odohHandler := func(b *testing.B) (*target.Handler, func(wire []byte) []byte) {
		c := zoneConfig(b, nil)
		key, err := c.Keys.Current()
		if err != nil {
			b.Fatal(err)
		}
		return newHandler(b, c), func(wire []byte) []byte {
			msg, _, err := odoh.SealQuery(key.Config(), wire)
			if err != nil {
				b.Fatal(err)
			}
			return msg
		}
	}
	b.Run("ODoH", func(b *testing.B) {
		h, seal := odohHandler(b)
		benchHandler(b, h, odoh.QueryPath, odoh.ContentType, seal)
	})
	// ODoH as net/http's HTTP/2 server runs a handler: on a new goroutine
	// per request, so that the figure includes the growth of its stack.
	b.Run("PerGoroutine", func(b *testing.B) {
		h, seal := odohHandler(b)
		done := make(chan struct{})
		benchServe(b, h, odoh.QueryPath, odoh.ContentType, seal, func(w http.ResponseWriter, r *http.Request) {
			go func() {
				h.ServeHTTP(w, r)
				done <- struct{}{}
			}()
			<-done
		})
	})
	b.Run("DoH", func(b *testing.B) {
		benchHandler(b, zoneHandler(b, nil), odoh.QueryPath, "application/dns-message", func(wire []byte) []byte { return wire })
	})
	b.Run("OHTTP", func(b *testing.B) {
		c := ohttpConfig(b, nil)
		h := newHandler(b, c)
		body, _, err := c.Keys.OHTTPConfigs()
		if err != nil {
			b.Fatal(err)
		}
		cfgs, err := ohttp.ParseKeyConfigs(body)
		if err != nil {
			b.Fatal(err)
		}
		benchHandler(b, h, target.OHTTPGatewayPath, ohttp.RequestContentType, func(wire []byte) []byte {
			r := firefoxQuery(b, gatewayAuthority, "www.zone.test.")
			r.Content = wire
			msg, _, err := ohttp.EncapsulateRequest(cfgs[0], encode(b, r))
			if err != nil {
				b.Fatal(err)
			}
			return msg
		})
	})
}

// cpuPerOp reports the process's CPU time per operation (cpu-ns/op) from
// the moment it is called to the end of b: with the upstream in another
// process, the CPU a query costs this side, which wall time per operation
// (mostly waiting for the upstream) does not show.
func cpuPerOp(b *testing.B) {
	start := processCPU()
	b.Cleanup(func() {
		if used := processCPU() - start; used > 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

// BenchmarkUpstream measures Upstreams.Resolve against a real Unbound on
// loopback answering from local data, over UDP and TCP, with 16 queries in
// flight: the target's upstream path without the HTTP and HPKE around it.
// ODoH-udp is the whole handler asking that Unbound over UDP (no cache, as
// bench/target.sh runs it), ODoH-zone the same handler answering the same
// names from a local zone: their cpu-ns/op differ by what the upstream
// exchange costs the target.
func BenchmarkUpstream(b *testing.B) {
	const names = 64
	var data []string
	for i := range names {
		data = append(data, fmt.Sprintf("q%d.ub.test. 300 IN A 192.0.2.%d", i, i+1))
	}
	addr := testunbound.Start(b, testunbound.Options{Zones: []string{"ub.test."}, LocalData: data})
	for _, scheme := range []string{"udp", "tcp"} {
		b.Run(scheme, func(b *testing.B) {
			up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{scheme + "://" + addr}})
			if err != nil {
				b.Fatal(err)
			}
			defer up.Close()
			qs := make([]*dns.Msg, names)
			for i := range qs {
				qs[i] = new(dns.Msg).SetQuestion(fmt.Sprintf("q%d.ub.test.", i), dns.TypeA)
			}
			b.SetParallelism(8) // 2 cores x 8 = 16 in flight
			b.ReportAllocs()
			b.ResetTimer()
			cpuPerOp(b)
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					m, err := up.Resolve(context.Background(), qs[i%names])
					if err != nil {
						b.Error(err)
						return
					}
					if len(m.Answer) != 1 {
						b.Errorf("answer %v", m)
						return
					}
				}
			})
		})
	}
	var zone strings.Builder
	zone.WriteString("$ORIGIN ub.test.\n$TTL 300\n@ IN SOA ns.ub.test. admin.ub.test. 1 3600 600 86400 60\n")
	for i := range names {
		fmt.Fprintf(&zone, "q%d IN A 192.0.2.%d\n", i, i+1)
	}
	for _, source := range []string{"udp", "zone"} {
		b.Run("ODoH-"+source, func(b *testing.B) {
			var chain target.ChainConfig
			if source == "zone" {
				z, err := target.ParseZone(strings.NewReader(zone.String()), "", "bench")
				if err != nil {
					b.Fatal(err)
				}
				chain.Zone = z
			} else {
				up, err := target.NewUpstreams(target.UpstreamsConfig{URLs: []string{"udp://" + addr}})
				if err != nil {
					b.Fatal(err)
				}
				defer up.Close()
				chain.Upstream = up
			}
			keys := newKeyring(b, nil, nil)
			h := newHandler(b, target.Config{Keys: keys, Resolver: newChain(b, chain)})
			key, err := keys.Current()
			if err != nil {
				b.Fatal(err)
			}
			benchHandlerParallel(b, h, func(i int) []byte {
				msg, _, err := odoh.SealQuery(key.Config(), query(b, fmt.Sprintf("q%d.ub.test.", i%names), dns.TypeA, uint16(i)))
				if err != nil {
					b.Fatal(err)
				}
				return msg
			})
		})
	}
}

// benchHandlerParallel is benchHandler with 16 requests in flight (as in
// BenchmarkUpstream), 256 distinct ODoH queries made by seal.
func benchHandlerParallel(b *testing.B, h *target.Handler, seal func(i int) []byte) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = seal(i)
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	cpuPerOp(b)
	b.RunParallel(func(pb *testing.PB) {
		r := newBenchRequest(b.Context(), odoh.QueryPath, odoh.ContentType)
		for i := 0; pb.Next(); i++ {
			if st := r.serve(h.ServeHTTP, bodies[i%len(bodies)]); st != http.StatusOK {
				b.Errorf("status %d", st)
				return
			}
		}
	})
}

package target_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
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

// benchHandler measures one request as the h2 server hands it to h:
// answered from the local zone, 256 distinct queries in turn.
func benchHandler(b *testing.B, h *target.Handler, path, ct string, seal func(wire []byte) []byte) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = seal(query(b, "www.zone.test.", dns.TypeA, uint16(i)))
	}
	w := &discardWriter{h: make(http.Header)}
	rb := &body{}
	req := (&http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: path},
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{"Content-Type": {ct}}, Body: rb,
	}).WithContext(b.Context())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bb := bodies[i%len(bodies)]
		rb.Reset(bb)
		req.ContentLength = int64(len(bb))
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkHandler reports the handler's time and allocations per query
// (make bench prints the ODoH allocs/op).
func BenchmarkHandler(b *testing.B) {
	b.Run("ODoH", func(b *testing.B) {
		c := zoneConfig(b, nil)
		h := newHandler(b, c)
		key, err := c.Keys.Current()
		if err != nil {
			b.Fatal(err)
		}
		benchHandler(b, h, odoh.QueryPath, odoh.ContentType, func(wire []byte) []byte {
			msg, _, err := odoh.SealQuery(key.Config(), wire)
			if err != nil {
				b.Fatal(err)
			}
			return msg
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

// BenchmarkUpstream measures Upstreams.Resolve against a real Unbound on
// loopback answering from local data, over UDP and TCP, with 16 queries in
// flight: the target's upstream path without the HTTP and HPKE around it.
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
}

package target_test

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/odoh"
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
func benchHandler(b *testing.B, h *target.Handler, ct string, seal func(wire []byte) []byte) {
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = seal(query(b, "www.zone.test.", dns.TypeA, uint16(i)))
	}
	w := &discardWriter{h: make(http.Header)}
	rb := &body{}
	req := (&http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: target.DefaultPath},
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
		h := zoneHandler(b, nil)
		key, err := h.Keys.Current()
		if err != nil {
			b.Fatal(err)
		}
		benchHandler(b, h, odoh.ContentType, func(wire []byte) []byte {
			msg, _, err := odoh.SealQuery(key.Config(), wire)
			if err != nil {
				b.Fatal(err)
			}
			return msg
		})
	})
	b.Run("DoH", func(b *testing.B) {
		benchHandler(b, zoneHandler(b, nil), "application/dns-message", func(wire []byte) []byte { return wire })
	})
}

package target_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/odohd/odoh/odoh"
)

// stalledBody yields its bytes, then blocks until released; it says when
// the handler reached the stall.
type stalledBody struct {
	r       io.Reader
	stalled chan struct{}
	release chan struct{}
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if n, err := b.r.Read(p); err != io.EOF {
		return n, err
	}
	close(b.stalled)
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

func (b *stalledBody) Close() error { return nil }

// TestStalledBodyCostsWhatArrived: a request that declares a 65000-byte
// body and sends a few bytes makes the handler hold what arrived, not what
// was declared (the old reader allocated the declared length at once).
func TestStalledBodyCostsWhatArrived(t *testing.T) {
	c := zoneConfig(t, nil)
	c.MaxBodySize = 65535
	h := newHandler(t, c)
	for _, arrived := range []int{0, 100, 5000} {
		body := &stalledBody{r: bytes.NewReader(make([]byte, arrived)), stalled: make(chan struct{}), release: make(chan struct{})}
		req := httptest.NewRequest(http.MethodPost, "/dns-query", body)
		req.Header.Set("Content-Type", odoh.ContentType)
		req.ContentLength = 65000
		w := httptest.NewRecorder()
		done := make(chan struct{})
		var before, at runtime.MemStats
		runtime.ReadMemStats(&before)
		go func() {
			defer close(done)
			h.ServeHTTP(w, req)
		}()
		<-body.stalled
		runtime.ReadMemStats(&at)
		close(body.release)
		<-done
		// What arrived, a 4 KiB chunk, the request's own small
		// allocations: far below the 65000 declared.
		n := at.TotalAlloc - before.TotalAlloc
		if n > uint64(arrived)+24<<10 {
			t.Errorf("%d of 65000 declared bytes arrived: the handler allocated %d bytes", arrived, n)
		}
		if w.Code != http.StatusBadRequest {
			t.Errorf("%d bytes then a broken body: status %d, want 400", arrived, w.Code)
		}
	}
}

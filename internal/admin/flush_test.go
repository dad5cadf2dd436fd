package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

type recordingFlusher struct {
	calls []string
}

func (f *recordingFlusher) Flush(name string, subtree bool) int {
	s := name
	if subtree {
		s += " subtree"
	}
	f.calls = append(f.calls, s)
	return 7
}

// TestFlushParameters: each scope, from the query string or a form body;
// every malformed request is refused without a flush.
func TestFlushParameters(t *testing.T) {
	for _, tc := range []struct {
		query, body string
		status      int
		call        string
	}{
		{query: "name=Example.COM", status: 200, call: "Example.COM."},
		{query: "name=example.com.&subtree=true", status: 200, call: "example.com. subtree"},
		{query: "name=example.com&subtree=0", status: 200, call: "example.com."},
		{query: "all=true", status: 200, call: ". subtree"},
		{body: "name=example.com&subtree=1", status: 200, call: "example.com. subtree"},
		{query: "", status: 400},
		{query: "all=false", status: 400},
		{query: "all=yes", status: 400},
		{query: "all=true&subtree=true", status: 400},
		{query: "name=a&name=b", status: 400},
		{query: "name=a..b", status: 400},
		{query: "name=" + strings.Repeat("a", 64) + ".test", status: 400},
		{query: "name=x&subtree=maybe", status: 400},
		{query: "zone=x", status: 400},
		{body: "name=" + strings.Repeat("a", 5000), status: 400},
	} {
		f := &recordingFlusher{}
		s, err := New(Options{Addr: "127.0.0.1:0", Cache: f})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/cache/flush?"+tc.query, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		got := strings.Join(f.calls, ",")
		if w.Code != tc.status || got != tc.call {
			t.Errorf("?%s body %q: %d %q, flushed %q; want %d, %q", tc.query, tc.body, w.Code, w.Body, got, tc.status, tc.call)
		}
		if w.Code == 200 && !strings.Contains(w.Body.String(), "flushed 7 entries") {
			t.Errorf("?%s: body %q", tc.query, w.Body)
		}
	}
}

// TestFlushOnlyWithCache: without a cache there is no flush endpoint.
func TestFlushOnlyWithCache(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/cache/flush?"+url.Values{"all": {"true"}}.Encode(), nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("flush without a cache: %d, want 404", w.Code)
	}
}

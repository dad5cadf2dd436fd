package odoh

import (
	"errors"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/vocabtest"
)

func TestHasContentType(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{"application/oblivious-dns-message"}, true},
		{[]string{"Application/Oblivious-DNS-Message"}, true},
		{[]string{" application/oblivious-dns-message ; x=1"}, true},
		{[]string{"application/dns-message"}, false},
		{[]string{"application/oblivious-dns-message-x"}, false},
		{[]string{""}, false},
		{nil, false},
		{[]string{"text/plain; application/oblivious-dns-message"}, false},
		{[]string{ContentType, ContentType}, false},
	} {
		if got := HasContentType(tc.values, ContentType); got != tc.want {
			t.Errorf("HasContentType(%q) = %v", tc.values, got)
		}
	}
	if !HasContentType([]string{"application/DNS-message"}, DoHContentType) {
		t.Error("DoH media type not matched case-insensitively")
	}
}

// TestMessageSizeLimits checks the size constants against real messages of
// every suite: the largest query and response each suite can frame are
// exactly its limits, and the package constants are the largest of them.
func TestMessageSizeLimits(t *testing.T) {
	var maxQ, maxR int
	for _, s := range allSuites() {
		key, err := GenerateKey(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg := key.Config()
		q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}
		msg, _, err := SealQueryPadded(cfg, q, maxQueryPlaintext(s)-plaintextLen(len(q), 0))
		if err != nil {
			t.Fatalf("%v: sealing the largest query: %v", s, err)
		}
		if len(msg) != MaxQuerySizeFor(s) {
			t.Errorf("%v: largest query is %d bytes, MaxQuerySize says %d", s, len(msg), MaxQuerySizeFor(s))
		}
		if _, _, err := SealQueryPadded(cfg, q, maxQueryPlaintext(s)-plaintextLen(len(q), 0)+1); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%v: a query one byte larger: err %v, want ErrTooLarge", s, err)
		}
		parsed, err := ParseMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		query, err := key.OpenQuery(parsed)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := query.SealResponsePadded(q, maxResponsePlaintext(s)-plaintextLen(len(q), 0))
		if err != nil {
			t.Fatalf("%v: sealing the largest response: %v", s, err)
		}
		if len(resp) != MaxResponseSizeFor(s) {
			t.Errorf("%v: largest response is %d bytes, MaxResponseSize says %d", s, len(resp), MaxResponseSizeFor(s))
		}
		maxQ, maxR = max(maxQ, len(msg)), max(maxR, len(resp))
	}
	if maxQ != MaxQuerySize || maxR != MaxResponseSize {
		t.Errorf("largest query %d, response %d; MaxQuerySize %d, MaxResponseSize %d", maxQ, maxR, MaxQuerySize, MaxResponseSize)
	}
	if MaxConfigsSize != 2+65535 {
		t.Errorf("MaxConfigsSize = %d", MaxConfigsSize)
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range vocabtest.MaxAgeCases {
		t.Run(tc.Name, func(t *testing.T) {
			for _, c := range []struct {
				shared bool
				want   vocabtest.Lifetime
			}{{false, tc.Private}, {true, tc.Shared}} {
				age, ok := MaxAge(tc.CacheControl, c.shared)
				if age != c.want.Age || ok != c.want.OK {
					t.Errorf("MaxAge(%q, shared=%v) = %v, %v; want %v, %v", tc.CacheControl, c.shared, age, ok, c.want.Age, c.want.OK)
				}
			}
		})
	}
}

// CacheControlMaxAge writes what MaxAge reads back, in whole seconds and
// never negative.
func TestCacheControlMaxAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{90 * time.Second, "max-age=90"},
		{1500 * time.Millisecond, "max-age=1"},
		{999 * time.Millisecond, "max-age=0"},
		{-5 * time.Second, "max-age=0"},
		{24 * time.Hour, "max-age=86400"},
	} {
		got := CacheControlMaxAge(tc.d)
		if got != tc.want {
			t.Errorf("CacheControlMaxAge(%v) = %q, want %q", tc.d, got, tc.want)
		}
		age, ok := MaxAge([]string{got}, true)
		if want := max(0, tc.d.Truncate(time.Second)); !ok || age != want {
			t.Errorf("MaxAge(%q) = %v, %v; want %v", got, age, ok, want)
		}
	}
}

package client_test

import (
	"testing"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/vocabtest"
)

// TestConfigsMaxAge runs the shared table of the Cache-Control rule
// (internal/vocabtest) through the client's config fetch: the lifetime it
// gives a target's configs is odoh.MaxAge for a private cache, clamped to
// [MinConfigTTL, MaxConfigTTL], and DefaultConfigTTL without one.
func TestConfigsMaxAge(t *testing.T) {
	s := newStack(t, 0)
	o := s.options(false)
	o.Direct = true
	c := s.client(t, o)
	for _, tc := range vocabtest.MaxAgeCases {
		t.Run(tc.Name, func(t *testing.T) {
			s.target.SetCacheControl(tc.CacheControl)
			got, err := c.Configs(t.Context())
			if err != nil || len(got) != 1 {
				t.Fatalf("Configs: %v, %v", got, err)
			}
			want := vocabtest.Clamp(tc.Private, client.DefaultConfigTTL, client.MinConfigTTL, client.MaxConfigTTL)
			if got[0].MaxAge != want {
				t.Errorf("Cache-Control %q: configs kept for %v, want %v", tc.CacheControl, got[0].MaxAge, want)
			}
		})
	}
}

package client

import (
	"testing"
	"time"
)

// Background fetches fall between 80% and 90% of the configs' lifetime,
// within RefetchDelay after a 401, and back off to at most 5 minutes.
func TestFetchDelays(t *testing.T) {
	for _, ttl := range []time.Duration{MinConfigTTL, time.Hour, MaxConfigTTL} {
		for range 200 {
			if d := refreshDelay(ttl); d < ttl*8/10 || d > ttl*9/10 {
				t.Fatalf("refresh of a %v config after %v", ttl, d)
			}
		}
	}
	for range 200 {
		if d := refetchDelay(); d <= 0 || d > RefetchDelay {
			t.Fatalf("refetch after %v", d)
		}
	}
	for n := 1; n < 100; n++ {
		if d := failureDelay(n); d < MinConfigTTL/2 || d > 5*time.Minute {
			t.Fatalf("backoff %d: %v", n, d)
		}
	}
}

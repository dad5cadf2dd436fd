package target

import (
	"sync/atomic"
	"time"
)

// Upstream health defaults.
const (
	// DefaultMaxFails is how many consecutive failures mark an upstream
	// down.
	DefaultMaxFails = 3
	// DefaultMinBackoff is how long an upstream stays down the first time.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the backoff, which doubles each time a probe
	// of a down upstream fails.
	DefaultMaxBackoff = 30 * time.Second
)

// healthPolicy is the pool-wide configuration of upstream health.
type healthPolicy struct {
	maxFails   int32 // 0: tracking disabled
	minBackoff time.Duration
	maxBackoff time.Duration
	// probeWindow is how long other queries keep skipping a down upstream
	// while one query probes it (the per-attempt timeout): a probe that
	// never reports does not keep the upstream down for good.
	probeWindow time.Duration
	now         func() time.Time
}

// health tracks one upstream. All fields are atomics: the hot path (an
// upstream that answers) is two atomic loads and no writes.
type health struct {
	fails atomic.Int32
	// downUntil is when the upstream may be probed again (unix ns); 0
	// means up. While a probe is in flight it is pushed a probe window on.
	downUntil atomic.Int64
	// backoff is the length of the last down period (ns); 0 when up.
	backoff atomic.Int64
}

// admit reports whether a query should try the upstream now (up is true),
// and whether that try is the probe of a down upstream whose backoff is
// over. Only one query at a time wins the probe; the others skip it.
func (h *health) admit(p *healthPolicy, now int64) (up, probe bool) {
	until := h.downUntil.Load()
	if until == 0 {
		return true, false
	}
	if now < until {
		return false, false
	}
	if h.downUntil.CompareAndSwap(until, now+int64(p.probeWindow)) {
		return true, true
	}
	return false, false
}

// succeeded records an answer: the upstream is up, its count reset.
// It reports whether the upstream was down.
func (h *health) succeeded() bool {
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if h.downUntil.Load() == 0 {
		return false
	}
	h.downUntil.Store(0)
	h.backoff.Store(0)
	return true
}

// failed records a failure. After p.maxFails in a row the upstream goes
// down for a backoff; a failed probe doubles the backoff, up to the maximum.
// It reports whether the upstream went (or stayed) down because of it.
func (h *health) failed(p *healthPolicy, now int64, probe bool) bool {
	// The count stops at the threshold, so it never wraps however long
	// the upstream stays dead.
	if n := h.fails.Load(); n < p.maxFails {
		if h.fails.Add(1) < p.maxFails {
			return false
		}
	}
	until := h.downUntil.Load()
	if until != 0 && !probe {
		// Already down: a straggler that was in flight when it went down,
		// or a last-resort try. It neither extends nor doubles the backoff.
		return false
	}
	b := time.Duration(h.backoff.Load())
	if b == 0 {
		b = p.minBackoff
	} else {
		b = min(2*b, p.maxBackoff)
	}
	// The compare-and-swap lets one of concurrent failures set the backoff.
	if !h.downUntil.CompareAndSwap(until, now+int64(b)) {
		return false
	}
	h.backoff.Store(int64(b))
	return true
}

// Down reports whether every upstream is known to be down: each has failed
// MaxFails times in a row and not answered since (its backoff may be over,
// its probe not yet answered). A Chain then serves an expired answer stale
// at once instead of after the upstreams' failures (RFC 8767 §5); the
// upstreams are still asked, and an answer refreshes the cache. Without
// health tracking (MaxFails negative) no upstream is known to be down.
func (u *Upstreams) Down() bool {
	if u.policy.maxFails <= 0 {
		return false
	}
	for i := range u.health {
		if u.health[i].downUntil.Load() == 0 {
			return false
		}
	}
	return true
}

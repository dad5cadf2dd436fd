// Package ratelog decides which of the events that can come in floods
// (refused requests, failing upstreams) to log: at most one per interval
// for each kind of event, with the number of events of that kind not
// logged since. A daemon thus says what goes wrong without letting clients
// fill its logs.
//
//	var refusals ratelog.Limiter[string]
//	if ok, missed := refusals.Allow(reason); ok {
//		logger.Info("refused a request", "reason", reason, "suppressed", missed)
//	}
package ratelog

import (
	"sync"
	"time"
)

// Defaults for the zero values of Limiter.
const (
	// DefaultInterval is how often one key is logged at most.
	DefaultInterval = 10 * time.Second
	// DefaultMaxKeys bounds the keys remembered at once.
	DefaultMaxKeys = 1024
)

// Limiter decides which events to log, by a key K that says what kind of
// event each is. Its zero value uses the defaults; it is safe for
// concurrent use.
type Limiter[K comparable] struct {
	// Interval is the least time between two lines for one key.
	Interval time.Duration
	// MaxKeys bounds the keys remembered. When full, keys not logged for
	// an Interval are forgotten; if none is, a new key's events are
	// logged under K's zero value (the overflow), still at most once per
	// Interval.
	MaxKeys int
	// Now, if set, is the clock (for tests); nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[K]*entry
}

type entry struct {
	last   time.Time
	missed int64
}

// Allow reports whether an event of key is to be logged now and, if so,
// how many events of key were not logged since its last line. The overflow
// key (K's zero value) is what Allow uses when MaxKeys keys are
// remembered already.
func (l *Limiter[K]) Allow(key K) (log bool, missed int64) {
	interval := l.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[K]*entry)
	}
	e := l.keys[key]
	if e == nil {
		// The overflow key takes the last place.
		if len(l.keys) >= maxKeys-1 {
			for k, old := range l.keys {
				if t.Sub(old.last) >= interval {
					delete(l.keys, k) // with its count of suppressed events, if any
				}
			}
		}
		if len(l.keys) >= maxKeys-1 {
			var overflow K
			key = overflow
			e = l.keys[key]
		}
		if e == nil {
			e = &entry{}
			l.keys[key] = e
			e.last = t
			return true, 0
		}
	}
	if t.Sub(e.last) < interval {
		e.missed++
		return false, 0
	}
	missed = e.missed
	e.last, e.missed = t, 0
	return true, missed
}

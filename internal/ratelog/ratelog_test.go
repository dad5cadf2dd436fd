package ratelog

import (
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// Each key is logged at most once per interval, with the count of its
// events not logged since; keys do not hold each other back.
func TestAllow(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := Limiter[string]{Interval: 10 * time.Second, Now: c.now}
	if ok, missed := l.Allow("a"); !ok || missed != 0 {
		t.Fatalf("first a: %v %d", ok, missed)
	}
	for range 5 {
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("a again within the interval")
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("b held back by a")
	}
	c.t = c.t.Add(9 * time.Second)
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a after 9s")
	}
	c.t = c.t.Add(time.Second)
	if ok, missed := l.Allow("a"); !ok || missed != 6 {
		t.Fatalf("a after 10s: %v, missed %d, want 6", ok, missed)
	}
	c.t = c.t.Add(time.Minute)
	if ok, missed := l.Allow("a"); !ok || missed != 0 {
		t.Fatalf("a later: %v, missed %d", ok, missed)
	}
}

// A flood of distinct keys stays within MaxKeys: beyond, the events
// share the overflow key (still once per interval), and keys idle for an
// interval make room.
func TestMaxKeys(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := Limiter[int]{Interval: time.Second, MaxKeys: 3, Now: c.now}
	for k := 1; k <= 2; k++ {
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("key %d", k)
		}
	}
	logged := 0
	for k := 3; k < 1000; k++ {
		if ok, _ := l.Allow(k); ok {
			logged++
		}
	}
	if logged != 1 || len(l.keys) != 3 {
		t.Fatalf("%d of the flood logged, %d keys; want 1 (the overflow) and 3", logged, len(l.keys))
	}
	c.t = c.t.Add(time.Second)
	if ok, _ := l.Allow(5000); !ok || len(l.keys) > 3 {
		t.Fatalf("after the interval a new key: %v, %d keys", ok, len(l.keys))
	}
}

package client

import (
	"testing"
	"time"
)

// TestUDPPoolShrinksOnlyAfterAQuietSecond: a worker with many idle
// workers beside it stays while the pool was short of readers within
// udpShrinkAfter (so that a steady load does not start a new worker, with
// a new stack to grow, for every other query), and exits once it was not.
func TestUDPPoolShrinksOnlyAfterAQuietSecond(t *testing.T) {
	u := &udpServer{max: 100}
	u.workers.Store(40)
	u.idle.Store(udpSpareWorkers + 40/8 + 1) // idle beyond the spare
	u.start = time.Now()
	u.short.Store(int64(time.Since(u.start)))
	if u.surplus() {
		t.Fatal("a worker exits right after the pool was short of readers")
	}
	u.start = u.start.Add(-udpShrinkAfter - time.Millisecond) // as if that was that long ago
	if !u.surplus() {
		t.Fatalf("with %d of %d workers idle and no shortage for %v, no worker exits", u.idle.Load(), u.workers.Load(), udpShrinkAfter)
	}
	u.idle.Store(udpSpareWorkers + 40/8)
	if u.surplus() {
		t.Fatal("a worker exits with no more than the spare workers idle")
	}
}

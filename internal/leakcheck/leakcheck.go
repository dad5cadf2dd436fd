// Package leakcheck finds goroutines that a test leaves behind.
//
// Fuzz targets run many inputs in one process, one after another. A
// [Baseline] taken before the first input and checked after each one
// catches an input that leaves a goroutine behind: leaks pile up, so a
// leak per input crosses any fixed slack within a few inputs, whatever the
// machine's speed. Goroutines that are still on their way out (a
// connection's reader after its peer closed) get a bounded grace period;
// after it, the check fails with every goroutine's stack.
package leakcheck

import (
	"runtime"
	"testing"
	"time"
)

// Grace is how long Check waits for goroutines on their way out.
const Grace = 5 * time.Second

// Baseline is the goroutine count of a process at a quiet moment.
type Baseline struct {
	n     int
	grace time.Duration
}

// Take records the current number of goroutines.
func Take() Baseline { return Baseline{n: runtime.NumGoroutine(), grace: Grace} }

// Check fails t if more than slack goroutines beyond the baseline are
// still running after Grace (at most). It returns at once when the count is within
// the slack.
func (b Baseline) Check(t testing.TB, slack int) {
	t.Helper()
	deadline := time.Now().Add(b.grace)
	for {
		n := runtime.NumGoroutine()
		if n <= b.n+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d at the start (slack %d): a goroutine leaked\n%s", n, b.n, slack, buf)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

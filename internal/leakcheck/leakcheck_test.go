package leakcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestCheckPassesWithinSlack(t *testing.T) {
	b := Take()
	r := &fatalRecorder{TB: t}
	b.Check(r, 0)
	if r.msg != "" {
		t.Fatalf("no goroutine started, yet: %s", r.msg)
	}
}

func TestCheckWaitsForExitingGoroutines(t *testing.T) {
	b := Take()
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); <-release }()
	go func() { defer wg.Done(); time.Sleep(20 * time.Millisecond); close(release) }()
	r := &fatalRecorder{TB: t}
	b.Check(r, 0)
	if r.msg != "" {
		t.Fatalf("goroutines on their way out reported: %s", r.msg)
	}
	wg.Wait()
}

func TestCheckReportsLeak(t *testing.T) {
	b := Take()
	b.grace = 50 * time.Millisecond
	stop := make(chan struct{})
	defer close(stop)
	// Several leaks, so that a goroutine of an earlier test still on its
	// way out when the baseline was taken cannot hide them.
	for range 5 {
		go func() { <-stop }()
	}
	r := &fatalRecorder{TB: t}
	b.Check(r, 0)
	if !strings.Contains(r.msg, "leaked") || !strings.Contains(r.msg, "TestCheckReportsLeak") {
		t.Fatalf("leak not reported with its stack: %q", r.msg)
	}
}

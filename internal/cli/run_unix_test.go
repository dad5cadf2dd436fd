//go:build unix

package cli

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRunRealSignals sends real signals to this test process; Run has
// subscribed to them before Start runs, so they never reach the default
// handlers.
func TestRunRealSignals(t *testing.T) {
	started := make(chan struct{})
	reloaded := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), slog.New(slog.DiscardHandler), Hooks{
			Start:  func(ctx context.Context) error { close(started); <-ctx.Done(); return nil },
			Reload: func() error { reloaded <- struct{}{}; return nil },
		})
	}()
	<-started
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not reload")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not stop Run")
	}
}

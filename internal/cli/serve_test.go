package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeServer serves until ctx is cancelled or Shutdown, or returns what
// fail sends.
type fakeServer struct {
	fail      chan error
	shut      chan struct{}
	cancelled chan struct{} // closed when Serve saw its ctx cancelled
}

func newFake() *fakeServer {
	return &fakeServer{fail: make(chan error, 1), shut: make(chan struct{}), cancelled: make(chan struct{})}
}

func (f *fakeServer) Serve(ctx context.Context) error {
	select {
	case err := <-f.fail:
		return err
	case <-f.shut:
		return nil
	case <-ctx.Done():
		close(f.cancelled)
		return ctx.Err()
	}
}

func (f *fakeServer) Shutdown(context.Context) error {
	close(f.shut)
	return nil
}

func serveAsync(g *Group, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Group.Serve did not return")
		return nil
	}
}

func TestGroupStopsTogether(t *testing.T) {
	boom := errors.New("boom")
	testCases := []struct {
		name    string
		failure error // what the first server returns
		want    string
	}{
		{"serving error", boom, "boom"},
		{"return without error before Shutdown", nil, "stopped serving unexpectedly"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFake(), newFake()
			done := serveAsync(NewGroup(a, b), context.Background())
			a.fail <- tc.failure
			err := wait(t, done)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Serve returned %v, want %q", err, tc.want)
			}
			select {
			case <-b.cancelled:
			default:
				t.Error("the other server was not stopped")
			}
		})
	}

	t.Run("shutdown", func(t *testing.T) {
		a, b := newFake(), newFake()
		g := NewGroup(a, b)
		done := serveAsync(g, context.Background())
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); err != nil {
			t.Errorf("Serve after Shutdown returned %v, want nil", err)
		}
	})

	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := serveAsync(NewGroup(newFake(), newFake()), ctx)
		cancel()
		if err := wait(t, done); err != nil {
			t.Errorf("Serve after cancellation returned %v, want nil", err)
		}
	})
}

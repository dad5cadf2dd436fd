package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testlog"
)

// recorder records the order of lifecycle events.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ",")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunReloadThenDrain(t *testing.T) {
	var rec, states recorder
	var logs testlog.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	sigs := make(chan os.Signal)
	reloads := 0
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), logger, Hooks{
			Start: func(ctx context.Context) error {
				rec.add("start")
				<-ctx.Done()
				rec.add("start-ctx-done")
				return ctx.Err()
			},
			Stopping: func() { rec.add("stopping") },
			Drain: func(ctx context.Context) error {
				dl, ok := ctx.Deadline()
				if !ok || time.Until(dl) < 500*time.Millisecond || time.Until(dl) > time.Second {
					t.Errorf("drain context deadline %v (set %v), want about 1s away", time.Until(dl), ok)
				}
				rec.add("drain")
				return nil
			},
			DrainTimeout: time.Second,
			Reload: func() error {
				reloads++
				rec.add("reload")
				if reloads == 1 {
					return errors.New("bad certificate")
				}
				return nil
			},
			Signals: sigs,
			Notify:  func(state string) error { states.add(state); return nil },
		})
	}()
	waitFor(t, "start", func() bool { return rec.String() == "start" })
	sigs <- syscall.SIGHUP // fails: keeps running
	sigs <- syscall.SIGHUP // succeeds
	waitFor(t, "two reloads", func() bool { return strings.Count(rec.String(), "reload") == 2 })
	select {
	case err := <-done:
		t.Fatalf("Run returned %v after SIGHUP", err)
	default:
	}
	if !strings.Contains(logs.String(), "reload failed") || !strings.Contains(logs.String(), "bad certificate") {
		t.Errorf("failed reload not logged: %s", logs.String())
	}
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	if got, want := rec.String(), "start,reload,reload,stopping,drain,start-ctx-done"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	// What a systemd unit of Type=notify sees: ready, each reload bracketed,
	// then stopping.
	if got, want := states.String(), "READY=1,RELOADING=1,READY=1,RELOADING=1,READY=1,STOPPING=1"; got != want {
		t.Errorf("notified %s, want %s", got, want)
	}
}

func TestRunStartFails(t *testing.T) {
	drained := false
	err := Run(t.Context(), slog.New(slog.DiscardHandler), Hooks{
		Start:   func(context.Context) error { return errors.New("address in use") },
		Drain:   func(context.Context) error { drained = true; return nil },
		Signals: make(chan os.Signal),
	})
	if err == nil || err.Error() != "address in use" {
		t.Fatalf("Run = %v", err)
	}
	if drained {
		t.Error("Drain called after Start failed")
	}
}

func TestRunParentContextDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var rec recorder
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, slog.New(slog.DiscardHandler), Hooks{
			Start: func(ctx context.Context) error {
				rec.add("start")
				<-ctx.Done()
				return nil
			},
			Stopping: func() { rec.add("stopping") },
			Drain: func(ctx context.Context) error {
				if ctx.Err() != nil {
					t.Error("drain context already done: it must be fresh")
				}
				rec.add("drain")
				return errors.New("requests still running")
			},
			Signals: make(chan os.Signal),
		})
	}()
	waitFor(t, "start", func() bool { return rec.String() == "start" })
	cancel()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "draining: requests still running") {
		t.Fatalf("Run = %v", err)
	}
	if got := rec.String(); got != "start,stopping,drain" {
		t.Errorf("events %s", got)
	}
}

func TestRunSecondSignalCutsDrain(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	inDrain := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), slog.New(slog.DiscardHandler), Hooks{
			Start: func(ctx context.Context) error { <-ctx.Done(); return nil },
			Drain: func(ctx context.Context) error {
				close(inDrain)
				<-ctx.Done()
				return ctx.Err()
			},
			DrainTimeout: time.Minute,
			Lameduck:     10 * time.Millisecond,
			Signals:      sigs,
		})
	}()
	sigs <- syscall.SIGINT
	<-inDrain
	sigs <- syscall.SIGINT
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want a cancelled drain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not cut the drain short")
	}
}

func TestRunWithoutStart(t *testing.T) {
	if err := Run(t.Context(), nil, Hooks{}); err == nil {
		t.Fatal("Run without Start succeeded")
	}
}

// A reload names what failed; what did not fail was reloaded.
func TestReloadNamesTheFailedParts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ReloadError{Part: "seed", Err: errors.New("bad seed")},
			`msg="reload failed for the seed, which keeps its previous state; the rest was reloaded" err="seed: bad seed"`},
		{errors.Join(&ReloadError{Part: "certificate", Err: errors.New("expired")}, &ReloadError{Part: "zone", Err: errors.New("bad zone")}),
			`msg="reload failed for the certificate and the zone, which keep their previous state; the rest was reloaded" err="certificate: expired\nzone: bad zone"`},
		{errors.New("whatever"), `msg="reload failed; keeping the previous state" err=whatever`},
	} {
		var logs bytes.Buffer
		reload(slog.New(slog.NewTextHandler(&logs, nil)), func() error { return tc.err })
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("logged %q, want %q", logs.String(), tc.want)
		}
	}
}

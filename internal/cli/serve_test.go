package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
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

// TestGroupQueryServerDiesAdminFollows runs what the daemons run: Run with
// a Group of a real HTTPS server and a real admin server. When the HTTPS
// server stops serving under it, Run must return an error (the daemon
// exits non-zero) and /readyz must stop answering 200.
func TestGroupQueryServerDiesAdminFollows(t *testing.T) {
	ca := testca.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &httpserve.Server{Addr: "127.0.0.1:0", TLSConfig: ca.ServerTLS(t), Logger: logger,
		Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	adm, err := admin.New(admin.Options{Addr: "127.0.0.1:0", Namespace: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Shutdown(context.Background()) })
	g := NewGroup(srv, adm)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), logger, Hooks{Start: g.Serve, Drain: g.Shutdown, Signals: make(chan os.Signal)})
	}()

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	readyz := func() (int, error) {
		resp, err := client.Get("http://" + adm.BoundAddr() + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for code, _ := readyz(); code != http.StatusOK; code, _ = readyz() {
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(10 * time.Millisecond)
	}

	_ = srv.Close() // the query server stops serving, nobody asked it to
	if err := wait(t, done); err == nil {
		t.Error("Run returned nil after the query server stopped: the daemon would exit 0")
	}
	if code, err := readyz(); err == nil {
		t.Errorf("/readyz answers %d after the query server died, want no answer", code)
	}
}

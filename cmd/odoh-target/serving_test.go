package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/httpserve"
	"github.com/odohd/odoh/internal/testca"
)

// TestQueryServerFailureStopsDaemon: when the HTTPS server stops serving
// on its own, the daemon must not linger with only its admin server up,
// answering /readyz 200 while nothing serves queries: serve returns an
// error (run exits 1) and the admin server is gone.
func TestQueryServerFailureStopsDaemon(t *testing.T) {
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	c, err := parseFlags([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-cert", cert, "-key", key, "-upstream", "udp://127.0.0.1:9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	type serving struct {
		srv   *httpserve.Server
		admin string
	}
	started := make(chan serving, 1)
	c.onServing = func(srv *httpserve.Server, admin string) { started <- serving{srv, admin} }
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), c, slog.New(slog.DiscardHandler)) }()
	var s serving
	select {
	case s = <-started:
	case err := <-done:
		t.Fatalf("daemon stopped at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	t.Cleanup(func() { _ = s.srv.Close() })

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	readyz := func() (int, error) {
		resp, err := client.Get("http://" + s.admin + "/readyz")
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

	_ = s.srv.Close() // the query server stops, nobody asked it to
	select {
	case err := <-done:
		if err == nil {
			t.Error("serve returned nil: the daemon would exit 0")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon kept running without its query server")
	}
	if code, err := readyz(); err == nil {
		t.Errorf("/readyz answers %d with no query server, want no answer", code)
	}
}

// TestSIGTERMRightAfterServing: an orchestrator may stop the daemon as
// soon as it announces that it serves; that SIGTERM must drain and exit 0,
// not kill the process because no handler was installed yet.
func TestSIGTERMRightAfterServing(t *testing.T) {
	ca := testca.New(t)
	for range 5 {
		d := startDaemon(t, ca)
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-d.exited:
			if err != nil {
				t.Fatalf("exit after an immediate SIGTERM: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no exit after SIGTERM")
		}
	}
}

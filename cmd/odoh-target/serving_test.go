package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

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

package main

import (
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/odohd/odoh/internal/limitsdoc"
	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testh2"
)

// TestRapidResetClosesConnection: HTTP/2 rapid reset against the target
// meets the reset budget (default): a graceful GOAWAY, then the close.
func TestRapidResetClosesConnection(t *testing.T) {
	ca := testca.New(t)
	d := startDaemon(t, ca)
	ga := testh2.Dial(t, d.addr, ca.ClientTLS()).RapidReset(t, d.addr, "/dns-query", 20000, 30*time.Second)
	if ga == nil {
		t.Fatal("connection closed without GOAWAY")
	}
	if ga.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY %v, want the reset budget's graceful NO_ERROR", ga.ErrCode)
	}
}

// TestTrickledBodyClosesConnection: an HTTP/2 stream whose body misses
// -read-timeout is answered, and its connection gets GOAWAY and closes
// (rather than each trickled stream holding a handler for the timeout).
func TestTrickledBodyClosesConnection(t *testing.T) {
	ca := testca.New(t)
	d := startDaemon(t, ca, "-read-timeout", "500ms", "-idle-timeout", "10m")
	fc := testh2.Dial(t, d.addr, ca.ClientTLS())
	if err := fc.Post(1, d.addr, "/dns-query", 100, false); err != nil {
		t.Fatal(err)
	}
	if err := fc.Framer.WriteData(1, false, []byte("four")); err != nil {
		t.Fatal(err)
	}
	var answered bool
	seen := func(f http2.Frame) {
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			answered = true
		}
	}
	ga := fc.Frames(t, 30*time.Second, seen)
	if ga == nil || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("GOAWAY %v", ga)
	}
	fc.WaitClosed(t, 30*time.Second, seen)
	if !answered {
		t.Error("the trickled stream got no answer")
	}
}

// TestLimitsTable: the README's limits table matches the target's flags.
func TestLimitsTable(t *testing.T) {
	limitsdoc.CheckFlags(t, limitsdoc.ReadTable(t, "../../README.md"), "target", newFlagSet(&config{}))
}

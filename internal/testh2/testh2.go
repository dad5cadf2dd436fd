// Package testh2 drives a server's HTTP/2 frame by frame, as a hostile
// client would (rapid reset, trickled bodies), for the limits tests of
// internal/httpserve and of the daemons.
package testh2

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Conn is a raw HTTP/2 connection over TLS. Frames are written from one
// goroutine at a time (the Framer is not safe for concurrent writes).
type Conn struct {
	TLS    *tls.Conn
	Framer *http2.Framer
	enc    *hpack.Encoder
	buf    bytes.Buffer
}

// Dial connects to addr with conf (ALPN h2 is set), sends the preface and
// an empty SETTINGS frame. The connection is closed at the test's end.
func Dial(t testing.TB, addr string, conf *tls.Config) *Conn {
	t.Helper()
	conf = conf.Clone()
	conf.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &Conn{TLS: c, Framer: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	if err := h.Framer.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// Post sends the HEADERS frame of a POST of an ODoH message to path on
// stream id, with contentLength as its Content-Length if not negative.
func (c *Conn) Post(id uint32, authority, path string, contentLength int, endStream bool) error {
	c.buf.Reset()
	fields := [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", authority}, {":path", path},
		{"content-type", "application/oblivious-dns-message"}}
	if contentLength >= 0 {
		fields = append(fields, [2]string{"content-length", itoa(contentLength)})
	}
	for _, f := range fields {
		_ = c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return c.Framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.buf.Bytes(), EndHeaders: true, EndStream: endStream})
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// Frames reads frames until a GOAWAY (returned) or the end of the
// connection (nil GOAWAY), calling seen (if not nil) with every other
// frame. It fails the test if neither comes within the wait.
func (c *Conn) Frames(t testing.TB, within time.Duration, seen func(http2.Frame)) *http2.GoAwayFrame {
	t.Helper()
	_ = c.TLS.SetReadDeadline(time.Now().Add(within))
	for {
		f, err := c.Framer.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no GOAWAY and no close within %v", within)
			}
			return nil
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga
		}
		if seen != nil {
			seen(f)
		}
	}
}

// WaitClosed reads until the server closes the connection, calling seen
// (if not nil) with every frame but GOAWAY; it fails the test if the
// server does not close within the wait.
func (c *Conn) WaitClosed(t testing.TB, within time.Duration, seen func(http2.Frame)) {
	t.Helper()
	for c.Frames(t, within, seen) != nil {
	}
}

// RapidReset opens n streams, each a POST to path whose HEADERS frame is
// followed at once by RST_STREAM (CVE-2023-44487), while reading what the
// server sends; it returns the server's GOAWAY, or nil if the server
// closed the connection without one. It fails the test if the server
// neither sends GOAWAY nor closes within the wait after the attack.
//
// The streams go in batches, each followed by a PING whose ack the next
// batch waits for: the server acks it once it has read the frames before
// it, so the client never runs ahead of the server's reading, however
// loaded the machine. Unpaced, the handlers of cancelled streams pile up
// behind a starved server until net/http's own cap on them closes the
// connection (ENHANCE_YOUR_CALM) before the reset budget under test is
// spent; that cap then decides the outcome, not the budget.
func (c *Conn) RapidReset(t testing.TB, authority, path string, n int, within time.Duration) *http2.GoAwayFrame {
	t.Helper()
	const batch = 64
	acked := make(chan struct{}, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i += batch {
			for j := i; j < min(i+batch, n); j++ {
				id := uint32(2*j + 1)
				if c.Post(id, authority, path, 100, false) != nil || c.Framer.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					return // the server has closed
				}
			}
			if c.Framer.WritePing(false, [8]byte{'b', 'a', 't', 'c', 'h'}) != nil {
				return
			}
			select {
			case <-acked:
			case <-stop:
				return
			}
		}
	}()
	ga := c.Frames(t, within, func(f http2.Frame) {
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			acked <- struct{}{} // one PING in flight at a time
		}
	})
	close(stop)
	c.TLS.Close()
	<-done
	return ga
}

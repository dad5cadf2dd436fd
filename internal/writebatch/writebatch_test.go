package writebatch

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Concurrent writers' records arrive whole and, per writer, in order: a
// batch never splits or reorders a write.
func TestWritesArriveWholeAndInOrder(t *testing.T) {
	c, s := tcpPair(t)
	b := New(c)
	const writers, records = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range records {
				// writer, sequence, length, then length bytes of the writer's id
				n := 1 + (i*7+w)%300
				rec := make([]byte, 10+n)
				binary.BigEndian.PutUint16(rec, uint16(w))
				binary.BigEndian.PutUint32(rec[2:], uint32(i))
				binary.BigEndian.PutUint32(rec[6:], uint32(n))
				for j := range n {
					rec[10+j] = byte(w)
				}
				if _, err := b.Write(rec); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		next := make([]uint32, writers)
		hdr := make([]byte, 10)
		for got := 0; got < writers*records; got++ {
			if _, err := io.ReadFull(s, hdr); err != nil {
				done <- err
				return
			}
			w, seq, n := binary.BigEndian.Uint16(hdr), binary.BigEndian.Uint32(hdr[2:]), binary.BigEndian.Uint32(hdr[6:])
			if int(w) >= writers || seq != next[w] {
				done <- errors.New("record out of order or from nowhere")
				return
			}
			next[w]++
			body := make([]byte, n)
			if _, err := io.ReadFull(s, body); err != nil {
				done <- err
				return
			}
			if !bytes.Equal(body, bytes.Repeat([]byte{byte(w)}, int(n))) {
				done <- errors.New("record body mixed with another")
				return
			}
		}
		done <- nil
	}()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// A write larger than MaxPending, and writes beyond it while the peer is
// not yet reading, all arrive intact.
func TestLargeWrites(t *testing.T) {
	c, s := tcpPair(t)
	b := New(c)
	want := make([]byte, 0, 8*MaxPending)
	for i := range cap(want) {
		want = append(want, byte(i*31))
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := b.Write(want[:3*MaxPending])
		for off := 3 * MaxPending; err == nil && off < len(want); off += 1000 {
			_, err = b.Write(want[off:min(off+1000, len(want))])
		}
		wrote <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
}

// A failed write (here: the write deadline has passed) is returned by the
// writes after it.
func TestWriteErrorSticks(t *testing.T) {
	c, _ := tcpPair(t)
	b := New(c)
	if err := b.SetWriteDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	var err error
	for err == nil {
		_, err = b.Write([]byte("query"))
		runtime.Gosched() // let the flusher run
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the deadline's error", err)
	}
	if _, err2 := b.Write([]byte("more")); !errors.Is(err2, os.ErrDeadlineExceeded) {
		t.Fatalf("second write: %v, want the same error", err2)
	}
}

// A TLS connection over a Conn sends its close_notify on Close: the peer
// reads everything, then a clean EOF rather than an unexpected one.
func TestTLSCloseNotify(t *testing.T) {
	ca := testca.New(t)
	c, s := tcpPair(t)
	srv := tls.Server(s, ca.ServerTLS(t, "localhost"))
	cli := tls.Client(New(c), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	got := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(srv) // io.ReadAll returns nil at a clean EOF
		if err == nil && string(b) != "hello, batched" {
			err = errors.New("read " + string(b))
		}
		got <- err
	}()
	if _, err := cli.Write([]byte("hello, ")); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Write([]byte("batched")); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("server side: %v", err)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// stuck fills b until its flusher is blocked in a write that its peer does
// not read, and a writer waits for room; the writer's error comes on the
// channel.
func stuck(b *Conn) <-chan error {
	chunk := make([]byte, MaxPending)
	errc := make(chan error, 1)
	go func() {
		var err error
		for err == nil { // fills the kernel's buffers, then MaxPending
			_, err = b.Write(chunk)
		}
		errc <- err
	}()
	for { // until the pending bytes stop draining
		b.mu.Lock()
		full := len(b.pending) == MaxPending
		b.mu.Unlock()
		if full {
			return errc
		}
		runtime.Gosched()
	}
}

// Close returns, and unblocks a writer waiting for room, even when the
// peer reads nothing and the flusher is stuck in a full socket buffer.
func TestCloseWithStuckPeer(t *testing.T) {
	c, _ := tcpPair(t)
	b := New(c)
	errc := stuck(b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked writer: %v", err)
	}
}

// With the flusher stuck, a deadline is set at once (a later one does not
// wait for the stuck bytes) and one in the past ends the blocked writes.
func TestDeadlineWithStuckPeer(t *testing.T) {
	c, _ := tcpPair(t)
	b := New(c)
	errc := stuck(b)
	if err := b.SetWriteDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked writer: %v", err)
	}
}

// Bytes accepted before a deadline is set are not cut by it: tls.Conn's
// CloseWrite sends its close_notify, then sets the write deadline to now,
// and an HTTP/1 server's last response goes out just before.
func TestDeadlineAfterWrites(t *testing.T) {
	c, s := tcpPair(t)
	b := New(c)
	want := bytes.Repeat([]byte("answer "), 5000)
	for off := 0; off < len(want); off += 700 {
		if _, err := b.Write(want[off:min(off+700, len(want))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	if _, err := b.Write([]byte("late")); err != nil {
		t.Fatal(err) // accepted; its write fails
	}
	var err error
	for err == nil {
		_, err = b.Write([]byte("late"))
		runtime.Gosched()
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after the deadline: %v", err)
	}
}

// A TLS server's CloseWrite (HTTP/1's way to end a connection) still
// delivers what was written before it, then a clean EOF.
func TestTLSCloseWrite(t *testing.T) {
	ca := testca.New(t)
	c, s := tcpPair(t)
	srv := tls.Server(New(s), ca.ServerTLS(t, "localhost"))
	cli := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
	want := bytes.Repeat([]byte("HTTP/1.1 200 OK\r\n"), 2000)
	go func() {
		_, _ = srv.Write(want)
		_ = srv.CloseWrite()
	}()
	got, err := io.ReadAll(cli)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
}

// Close delivers what Write accepted before it.
func TestCloseDeliversPending(t *testing.T) {
	for range 50 {
		c, s := tcpPair(t)
		b := New(c)
		want := []byte("GOAWAY, then close")
		if _, err := b.Write(want); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
}

// A flusher that the scheduler runs late (a loaded machine) still
// delivers everything, at Close and at a deadline set to end the writes:
// only a write(2) blocked for closeWait by a peer that is not reading is
// cut short, not the time before the flusher runs. Before, Close and
// CloseWrite's deadline gave the flusher closeWait from the moment they
// were called, and a response's last bytes were lost when it ran later.
func TestLateFlusherDelivers(t *testing.T) {
	for _, end := range []struct {
		name string
		fn   func(*Conn) error
	}{
		{"Close", (*Conn).Close},
		{"past deadline", func(b *Conn) error { return b.SetWriteDeadline(time.Now()) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			c, s := tcpPair(t)
			b := New(c)
			b.beforeFlush = func() { time.Sleep(3 * closeWait) }
			want := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			if _, err := b.Write(want); err != nil {
				t.Fatal(err)
			}
			if err := end.fn(b); err != nil {
				t.Fatal(err)
			}
			// Lost bytes would leave the read waiting: fail instead.
			_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, len(want))
			if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %q, %v; want %q", got, err, want)
			}
		})
	}
}

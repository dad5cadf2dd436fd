// Package writebatch batches the writes of a net.Conn into fewer system
// calls, for the connections under Go's HTTP/2 client and server.
//
// Go's HTTP/2 client flushes a request's HEADERS frame and its DATA frame
// separately, and its server a response's HEADERS apart from its DATA
// whenever its write queue runs empty in between: each flush is one TLS
// record written by its own write(2). Under a tls.Conn, a Conn takes each
// write into a buffer and returns at once; a flusher goroutine, started by
// the first write into an empty buffer, writes the buffer out and exits
// once it is empty. Whatever is written while the flusher is starting or
// inside write(2) goes out in its next system call, so a request's
// records, and those of concurrent streams, share one. Nothing waits for a
// timer, and an idle connection holds no goroutine.
//
// A write error (a write deadline that ran out, say) is returned by every
// later Write, as tls.Conn and net/http treat any write error as the
// connection's end. At most MaxPending bytes wait besides the batch being
// written: a writer beyond that blocks until the flusher takes them.
package writebatch

import (
	"net"
	"sync"
	"time"
)

const (
	// MaxPending bounds the bytes waiting for the flusher (one write
	// larger than this waits alone). A peer that stops reading makes a
	// connection hold up to twice this (pending and the batch being
	// written) besides what it held before: 16 KiB, a TLS record's worth,
	// keeps that to about 128 MiB over a daemon's 4096 connections, while
	// a batch still holds dozens of ODoH-sized frames.
	MaxPending = 16 << 10
	// keepBuffer is the largest buffer an idle connection keeps for its
	// next batch: a few records; larger ones go back to the heap.
	keepBuffer = 4 << 10
	// closeWait bounds how long Close (and a deadline set to end the
	// writes) waits for a write(2) blocked because the peer does not
	// read: a connection being closed gets no more time. Time the flusher
	// spends waiting to be scheduled does not count, so that a loaded
	// machine does not cut the last bytes of a response.
	closeWait = 100 * time.Millisecond
)

// Conn is a net.Conn whose writes are batched; reads, addresses and
// deadlines are the wrapped connection's.
type Conn struct {
	net.Conn

	mu      sync.Mutex
	drained sync.Cond // broadcast after each batch and on close
	pending []byte    // bytes waiting for the flusher
	spare   []byte    // the buffer of the last batch, for the next
	running bool      // a flusher is started
	queued  int64     // bytes accepted by Write, in all
	written int64     // bytes the flusher has handed to the connection
	err     error     // the first write error, returned by every later Write
	closed  bool
	// writeStart is when the flusher's write(2) in progress began (zero
	// when it is not writing).
	writeStart time.Time
	// beforeFlush, when set (by tests), runs as the flusher starts: a
	// flusher the scheduler has not run yet.
	beforeFlush func()
	// flushFn is flush bound once: a go statement on it allocates no
	// closure per batch.
	flushFn func()
}

// New wraps c.
func New(c net.Conn) *Conn {
	b := &Conn{Conn: c}
	b.drained.L = &b.mu
	b.flushFn = b.flush
	return b
}

// Write queues p for the flusher and returns len(p), or the error an
// earlier write ended with.
func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && !b.closed && len(b.pending) > 0 && len(b.pending)+len(p) > MaxPending {
		b.drained.Wait()
	}
	switch {
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return 0, err
	case b.closed:
		b.mu.Unlock()
		return 0, net.ErrClosed
	}
	if b.pending == nil {
		b.pending, b.spare = b.spare[:0], nil
	}
	b.pending = append(b.pending, p...)
	b.queued += int64(len(p))
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.flushFn()
	}
	return len(p), nil
}

// flush writes what is pending, one system call per batch, until nothing
// is.
func (b *Conn) flush() {
	if b.beforeFlush != nil {
		b.beforeFlush()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && b.err == nil {
		out := b.pending
		b.pending = nil
		b.drained.Broadcast() // room for the next batch
		b.writeStart = time.Now()
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.writeStart = time.Time{}
		b.written += int64(len(out))
		if cap(out) <= keepBuffer {
			b.spare = out[:0]
		}
		if err != nil && b.err == nil {
			b.err = err
		}
		b.drained.Broadcast()
	}
	b.running = false
	b.drained.Broadcast()
}

// Close lets the flusher write what is pending (a TLS close_notify alert
// queued just before, say), giving a write(2) blocked by a peer that is
// not reading at most closeWait, then closes the connection; later writes
// fail with net.ErrClosed.
func (b *Conn) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		b.await(b.queued)
		b.pending = nil
		b.drained.Broadcast()
	}
	b.mu.Unlock()
	return b.Conn.Close()
}

// SetWriteDeadline sets the write deadline. Bytes already accepted are
// under it too (they would be in flight on a plain connection), except
// when it is already past or closer than closeWait (one set to end the
// writes after it, as tls.Conn's CloseWrite does, or to interrupt a blocked
// write): then they are written first, within closeWait.
func (b *Conn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle(t)
	return b.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines, the write one as SetWriteDeadline does.
func (b *Conn) SetDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settle(t)
	return b.Conn.SetDeadline(t)
}

// settle, with b.mu held, lets the bytes accepted so far be written
// (see await) before a deadline sooner than closeWait is set.
func (b *Conn) settle(t time.Time) {
	if !b.running || t.IsZero() || !t.Before(time.Now().Add(closeWait)) {
		return
	}
	b.await(b.queued)
}

// await, with b.mu held, waits until the flusher has handed the bytes up
// to target to the connection, has stopped, or has failed. A write(2) of
// the flusher's that has been blocked for closeWait (its peer is not
// reading) is ended by a write deadline in the past; a flusher that has
// yet to run, or is between writes, is waited for: the scheduler will run
// it, and cutting it off would lose bytes a slow peer would have read.
func (b *Conn) await(target int64) {
	if !b.running || b.written >= target || b.err != nil {
		return
	}
	tick := time.AfterFunc(closeWait, b.wake)
	defer tick.Stop()
	for b.running && b.written < target && b.err == nil {
		wait := closeWait
		if s := b.writeStart; !s.IsZero() {
			if d := time.Since(s); d >= closeWait {
				_ = b.Conn.SetWriteDeadline(time.Now())
			} else {
				wait = closeWait - d
			}
		}
		tick.Reset(wait)
		b.drained.Wait()
	}
}

// wake wakes await to look at the flusher's write again.
func (b *Conn) wake() {
	b.mu.Lock()
	b.drained.Broadcast()
	b.mu.Unlock()
}

// Package httpbody reads HTTP bodies under a size limit, for every role:
// the target and the proxy read request bodies into pooled buffers, the
// proxy and the client read response bodies. One reader, so that the limit
// is enforced, and a declared length trusted, in one way.
package httpbody

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrTooLarge is wrapped by the error of a body over its limit.
var ErrTooLarge = errors.New("body too large")

const (
	// trusted is the most a declared length alone makes Read allocate.
	trusted = 4 << 10
	// chunkSize is the size of the buffers a body that outgrows its
	// buffer is read into as it arrives.
	chunkSize = 4 << 10
	// MaxPooled is the largest buffer a role keeps in its pool for the
	// next request: a rare large body's buffer is left to the collector
	// rather than held by an idle pool.
	MaxPooled = 8 << 10
)

// Chunks is a pool of the buffers that Read fills as a large body arrives;
// share one per server. The zero value is ready to use, and a nil *Chunks
// allocates its buffers afresh.
type Chunks struct {
	pool sync.Pool // of *[chunkSize]byte
}

func (c *Chunks) get() *[chunkSize]byte {
	if c != nil {
		if b, ok := c.pool.Get().(*[chunkSize]byte); ok {
			return b
		}
	}
	return new([chunkSize]byte)
}

func (c *Chunks) put(b *[chunkSize]byte) {
	if c != nil {
		c.pool.Put(b)
	}
}

// Read is c.Read with buffers allocated afresh.
func Read(r io.Reader, buf []byte, declared, limit int64) ([]byte, error) {
	return (*Chunks)(nil).Read(r, buf, declared, limit)
}

// Read appends all of r to buf and returns it, refusing a body of more
// than limit bytes: at once when the declared length (a Content-Length;
// -1 when unknown) says so, else as soon as more arrived.
//
// What a client has not sent costs nothing: a declared length of at most
// 4 KiB is allocated at once; a longer body fills buf's spare room, then
// 4 KiB chunks from c as it arrives (so that a request that declares 64 KiB
// and sends them slowly, or never, holds what it sent), and is copied into
// one buffer of its exact size at its end. On error the returned slice is
// buf with what fitted in it, so that pooled buffers can go back to their
// pool.
func (c *Chunks) Read(r io.Reader, buf []byte, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return buf, tooLarge(limit)
	}
	if want := len(buf) + int(declared) + 1; declared >= 0 && declared < trusted && cap(buf) < want {
		grown := make([]byte, len(buf), want)
		copy(grown, buf)
		buf = grown
	}
	start := len(buf)
	var chunks []*[chunkSize]byte
	defer func() {
		for _, b := range chunks {
			c.put(b)
		}
	}()
	var inChunks int // bytes in chunks; the last one holds inChunks%chunkSize, or is full
	for {
		var dst []byte
		if len(buf) < cap(buf) {
			dst = buf[len(buf):cap(buf)]
		} else {
			if inChunks == len(chunks)*chunkSize {
				chunks = append(chunks, c.get())
			}
			dst = chunks[len(chunks)-1][inChunks%chunkSize:]
		}
		n, err := r.Read(dst)
		if len(chunks) == 0 {
			buf = buf[:len(buf)+n]
		} else {
			inChunks += n
		}
		if int64(len(buf)-start+inChunks) > limit {
			return buf, tooLarge(limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	if inChunks == 0 {
		return buf, nil
	}
	body := make([]byte, len(buf), len(buf)+inChunks)
	copy(body, buf)
	for _, b := range chunks {
		n := min(inChunks, chunkSize)
		body = append(body, b[:n]...)
		inChunks -= n
	}
	return body, nil
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
}

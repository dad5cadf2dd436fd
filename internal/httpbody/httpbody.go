// Package httpbody reads HTTP bodies under a size limit, for every role:
// the target and the proxy read request bodies into pooled buffers, the
// proxy and the client read response bodies. One reader, so that the limit
// is enforced, and a declared length trusted, in one way.
package httpbody

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is wrapped by the error of a body over its limit.
var ErrTooLarge = errors.New("body too large")

// Read appends all of r to buf and returns it, refusing a body of more
// than limit bytes: at once when the declared length (a Content-Length;
// -1 when unknown) says so, else as soon as more arrived. Read never
// allocates more than the declared length (plus one byte, to see EOF) or
// the limit. On error the returned slice holds what was read, so that
// pooled buffers can go back to their pool.
func Read(r io.Reader, buf []byte, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return buf, tooLarge(limit)
	}
	if want := int64(len(buf)) + declared + 1; declared > 0 && int64(cap(buf)) < want {
		grown := make([]byte, len(buf), want)
		copy(grown, buf)
		buf = grown
	}
	start := len(buf)
	for {
		if len(buf) == cap(buf) {
			// Grow by doubling, but never past limit+1 bytes of body.
			room := min(max(int64(cap(buf)-start), 512), limit+1-int64(len(buf)-start))
			grown := make([]byte, len(buf), len(buf)+int(room))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)-start) > limit {
			return buf, tooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
}

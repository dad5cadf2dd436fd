package httpserve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The reset budget. HTTP/2 rapid reset (CVE-2023-44487) makes a server
// start handlers for streams that the client cancels at once; net/http
// stops a connection whose cancelled streams queue up, but a handler that
// answers fast (a relay's 429) never lets them queue. So each connection
// keeps its own count: a stream the client resets before its answer, or
// that the handler refuses for a limit (CountRefused), adds one; a stream
// answered normally takes one away. A connection whose count passes the
// budget is closed: over HTTP/1.1 and HTTP/2 with "Connection: close" on
// its next response (net/http then sends GOAWAY and lets running streams
// finish), over HTTP/3 at once with H3_EXCESSIVE_LOAD (quic-go has no
// GOAWAY for one connection).
//
// A request body that misses its read deadline also closes an HTTP/1.1
// or HTTP/2 connection (its answer carries "Connection: close"): the
// unread rest of an HTTP/1.1 body would otherwise hold the connection
// until the whole request's ReadTimeout, and a client that trickles one
// body trickles others. Over HTTP/3 it counts against the budget.

// Reasons a connection is closed by a rule, for Metrics.
const (
	// ClosedResetBudget: the connection's reset budget was spent.
	ClosedResetBudget = "reset_budget"
	// ClosedLateBody: a request body missed its read deadline (HTTP/1.1
	// and HTTP/2; over HTTP/3 it counts against the reset budget).
	ClosedLateBody = "late_body"
)

// ClosedReasons are every reason Metrics.ConnClosed may be given.
var ClosedReasons = []string{ClosedResetBudget, ClosedLateBody}

// connState is the per-connection state of the reset budget.
type connState struct {
	budget int32
	wasted atomic.Int32
	// quic is the connection over HTTP/3, nil over TCP.
	quic *quic.Conn
	// closing is set once the connection is to be closed by a rule, so
	// that it is counted once.
	closing atomic.Bool
	metrics Metrics
}

type connStateKey struct{}

func withConnState(ctx context.Context, budget int, qc *quic.Conn, m Metrics) context.Context {
	return context.WithValue(ctx, connStateKey{}, &connState{budget: int32(budget), quic: qc, metrics: m})
}

// waste counts a wasted stream and reports whether the budget is spent.
func (cs *connState) waste() bool {
	if cs.wasted.Add(1) > cs.budget {
		cs.close(ClosedResetBudget)
		return true
	}
	return false
}

// close records that the connection is to be closed for reason, the
// first time only.
func (cs *connState) close(reason string) {
	if cs.closing.CompareAndSwap(false, true) && cs.metrics != nil {
		cs.metrics.ConnClosed(reason)
	}
}

// answered takes one wasted stream off the count, down to zero.
func (cs *connState) answered() {
	for {
		n := cs.wasted.Load()
		if n <= 0 || cs.wasted.CompareAndSwap(n, n-1) {
			return
		}
	}
}

func (cs *connState) spent() bool { return cs.wasted.Load() > cs.budget }

// closeQUIC closes an HTTP/3 connection whose budget is spent.
func (cs *connState) closeQUIC() {
	if cs.quic != nil {
		_ = cs.quic.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeExcessiveLoad), "too many reset or refused streams")
	}
}

var connectionClose = []string{"close"}

// CountRefused tells the server that serves r (an httpserve Server) that
// the handler refused r for a limit (a 429, say): it counts against the
// connection's reset budget. Call it with the request as the handler got
// it. Elsewhere it does nothing.
func CountRefused(r *http.Request) {
	if b, ok := r.Body.(*guardBody); ok {
		b.refused = true
	}
}

// guardBody is a request's body under the guard, and the request's own
// state. It is the request's Body only while the handler runs.
type guardBody struct {
	io.ReadCloser
	w        http.ResponseWriter
	cs       *connState
	h1       bool
	refused  bool
	timedOut bool
	sawEOF   bool
}

func (b *guardBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.sawEOF = true
	case err != nil && !b.timedOut && errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut = true
		if b.cs.quic == nil {
			// Before the handler answers the timeout.
			b.w.Header()["Connection"] = connectionClose
			b.cs.close(ClosedLateBody)
		}
	}
	return n, err
}

// Close closes the body. On HTTP/1.1 a body closed before its end means
// the connection cannot be reused: net/http tells so from its own body
// type, which it does not see behind this one, so say it in the answer.
func (b *guardBody) Close() error {
	if b.h1 && !b.sawEOF {
		b.w.Header()["Connection"] = connectionClose
	}
	return b.ReadCloser.Close()
}

// guard applies the request cap, the reset budget and the body deadline
// rule to next.
type guard struct {
	next        http.Handler
	maxRequests int64         // 0: no cap
	running     *atomic.Int64 // shared by the servers' guards
}

var (
	retryAfter = []string{"1"}
	noStore    = []string{"no-store"}
	textPlain  = []string{"text/plain; charset=utf-8"}
)

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs, _ := r.Context().Value(connStateKey{}).(*connState)
	if cs != nil && cs.spent() {
		if cs.quic != nil {
			cs.closeQUIC()
			return
		}
		w.Header()["Connection"] = connectionClose
	}
	if g.maxRequests > 0 {
		if g.running.Add(1) > g.maxRequests {
			g.running.Add(-1)
			busy(w)
			if cs != nil && cs.waste() && cs.quic != nil {
				cs.closeQUIC()
			}
			return
		}
		defer g.running.Add(-1)
	}
	if cs == nil {
		g.next.ServeHTTP(w, r)
		return
	}
	b := &guardBody{ReadCloser: r.Body, w: w, cs: cs, h1: r.ProtoMajor == 1}
	r.Body = b
	g.next.ServeHTTP(w, r)
	// net/http looks at the body type after the handler (HTTP/1.1).
	r.Body = b.ReadCloser
	if b.timedOut && b.h1 {
		// net/http reads what is left of the body before closing; a
		// handler may have cleared the deadline that stopped it.
		_ = http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0))
	}
	switch {
	case b.refused, b.timedOut, r.Context().Err() != nil:
		if cs.waste() && cs.quic != nil {
			cs.closeQUIC()
		}
	default:
		cs.answered()
	}
}

// busy answers a request beyond MaxRequests.
func busy(w http.ResponseWriter) {
	h := w.Header()
	h["Retry-After"] = retryAfter
	h["Cache-Control"] = noStore
	h["Content-Type"] = textPlain
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, "server busy: too many requests in progress\n")
}

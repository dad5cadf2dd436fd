package main

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/cli"
)

// deferredLogger is the logger of a one-shot command (query, configs).
// The client logs a failure it will also return (a configs fetch that
// failed, say) at warn level, which a long-running stub needs; a command
// that prints the returned error would show it twice. So records that
// carry an "err" wait until the command ends, and flush drops those whose
// error the command's error already contains; records with an error
// after it (the client's work cancelled as it closes) are dropped too.
// Other records are written at once.
type deferredLogger struct {
	logger *slog.Logger
	st     *deferState
}

type deferState struct {
	mu      sync.Mutex
	held    []heldRecord
	flushed bool
}

type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func newDeferredLogger(c cli.LogConfig, w io.Writer) (*deferredLogger, error) {
	l, err := c.Logger(w)
	if err != nil {
		return nil, err
	}
	st := &deferState{}
	return &deferredLogger{logger: slog.New(&deferHandler{st: st, inner: l.Handler()}), st: st}, nil
}

// flush writes the held records, but those whose error err already
// reports; later records are written at once, but those with an error.
func (d *deferredLogger) flush(err error) {
	d.st.mu.Lock()
	held := d.st.held
	d.st.held, d.st.flushed = nil, true
	d.st.mu.Unlock()
	text := ""
	if err != nil {
		text = err.Error()
	}
	for _, h := range held {
		if text != "" && sameFailure(text, h.r) {
			continue
		}
		_ = h.h.Handle(context.Background(), h.r)
	}
}

// sameFailure reports whether the command's error text reports what the
// record does: the record's error is part of it, or both are a failure to
// get the configs of the record's target. (The client's fetch may fail
// with its own words, "response body closed", when the query's deadline
// cuts it, while the query reports the deadline.)
func sameFailure(text string, r slog.Record) bool {
	e := errAttr(r)
	if strings.Contains(text, e) {
		return true
	}
	prefix := client.ErrConfig.Error()
	if !strings.HasPrefix(e, prefix) || !strings.Contains(text, prefix) {
		return false
	}
	u, err := url.Parse(attr(r, "target"))
	return err == nil && u.Host != "" && strings.Contains(text, u.Host)
}

// errAttr is the record's "err" attribute as text, or "".
func errAttr(r slog.Record) string { return attr(r, "err") }

// attr is the record's attribute key as text, or "".
func attr(r slog.Record, key string) string {
	s := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			s = a.Value.String()
			return false
		}
		return true
	})
	return s
}

type deferHandler struct {
	st    *deferState
	inner slog.Handler
}

func (h *deferHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *deferHandler) Handle(ctx context.Context, r slog.Record) error {
	if errAttr(r) != "" {
		h.st.mu.Lock()
		defer h.st.mu.Unlock()
		if !h.st.flushed {
			h.st.held = append(h.st.held, heldRecord{h.inner, r.Clone()})
		}
		// After flush the command has reported its outcome: a failure
		// logged now is the client's shutdown cancelling its work.
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *deferHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &deferHandler{st: h.st, inner: h.inner.WithAttrs(as)}
}

func (h *deferHandler) WithGroup(name string) slog.Handler {
	return &deferHandler{st: h.st, inner: h.inner.WithGroup(name)}
}

// hintHandler adds to a record whose "err" attribute is an error the
// hints that the query command prints under its error, as a "fix"
// attribute: the stub, which runs for long, logs its failures instead of
// returning them, and its operator needs the same advice.
type hintHandler struct {
	inner slog.Handler
}

func withHints(l *slog.Logger) *slog.Logger {
	return slog.New(&hintHandler{inner: l.Handler()})
}

func (h *hintHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *hintHandler) Handle(ctx context.Context, r slog.Record) error {
	var hs []string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		if err, ok := a.Value.Any().(error); ok {
			hs = hints(err)
		}
		return false
	})
	if len(hs) > 0 {
		r = r.Clone()
		r.AddAttrs(slog.String("fix", strings.Join(hs, "; ")))
	}
	return h.inner.Handle(ctx, r)
}

func (h *hintHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &hintHandler{inner: h.inner.WithAttrs(as)}
}

func (h *hintHandler) WithGroup(name string) slog.Handler {
	return &hintHandler{inner: h.inner.WithGroup(name)}
}

package httpserve

import (
	"context"
	"log"
	"log/slog"
	"regexp"
	"strings"
)

// floorHandler drops records below a level. quic-go's HTTP/3 server logs
// every request's method, host and URI at debug level, and a relay's URIs
// name its targets: that must not reach an operator's logs even at
// -log-level debug.
type floorHandler struct {
	slog.Handler
	min slog.Level
}

func (h floorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h floorHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return floorHandler{h.Handler.WithAttrs(a), h.min}
}

func (h floorHandler) WithGroup(name string) slog.Handler {
	return floorHandler{h.Handler.WithGroup(name), h.min}
}

// addrPattern matches IPv4 and bracketed IPv6 socket addresses.
var addrPattern = regexp.MustCompile(`\[[0-9A-Fa-f:.]+(?:%[^\]]+)?\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b`)

// redactWriter receives net/http's error log lines ("http: TLS handshake
// error from 192.0.2.1:5555: EOF") and logs them at debug level without
// the peer's address: a target must never log client (or proxy) addresses,
// a proxy never its clients'.
type redactWriter struct{ logger *slog.Logger }

func (w redactWriter) Write(p []byte) (int, error) {
	if w.logger.Enabled(context.Background(), slog.LevelDebug) {
		msg := addrPattern.ReplaceAllString(strings.TrimRight(string(p), "\n"), "<addr>")
		w.logger.Debug(msg)
	}
	return len(p), nil
}

func errorLog(l *slog.Logger) *log.Logger { return log.New(redactWriter{l}, "", 0) }

func quicLogger(l *slog.Logger) *slog.Logger {
	return slog.New(floorHandler{l.Handler(), slog.LevelInfo})
}

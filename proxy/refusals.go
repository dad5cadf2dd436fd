package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/odohd/odoh/internal/ratelog"
	"github.com/odohd/odoh/odoh"
)

// logFailure logs a request that the proxy refused, or could not forward
// because its target failed: at info level for a refusal, at warn level
// for a failing target, at most once per target and reason every
// ratelog.DefaultInterval (with the count of those not logged). It names
// the target (canonical host:port, or "" when the request named none that
// parses) and the reason, never the client. writeFailure, the one place
// that answers failures, calls it.
func (h *Handler) logFailure(target string, f *failure) {
	level, msg := slog.LevelInfo, "refused a request"
	if f.status >= http.StatusInternalServerError && f.kind.NextHop() {
		level, msg = slog.LevelWarn, "could not forward to a target"
	}
	if !h.log.Enabled(context.Background(), level) {
		return
	}
	ok, missed := h.refusals.Allow(refusal{target, f.kind, f.details})
	if !ok {
		return
	}
	args := []any{"target", target, "status", f.status, "proxy_status", string(f.kind)}
	if f.details != "" {
		args = append(args, "reason", f.details)
	}
	if f.err != nil {
		args = append(args, "err", f.err.Error())
	}
	h.log.Log(context.Background(), level, msg, append(args, "suppressed", missed, "log_interval", ratelog.DefaultInterval)...)
}

// refusal is what logFailure logs once per interval: a target and a
// reason.
type refusal struct {
	target  string
	kind    odoh.ProxyError
	details string
}

// targetFailure is a stage's error with the target of its request, for
// the log.
type targetFailure struct {
	target string
	err    error
}

func (e *targetFailure) Error() string { return e.err.Error() }
func (e *targetFailure) Unwrap() error { return e.err }

// atTarget names t as the target of a failed request; nil and
// errClientGone pass unchanged.
func atTarget(t *target, err error) error {
	if err == nil || t == nil || errors.Is(err, errClientGone) {
		return err
	}
	return &targetFailure{target: t.key, err: err}
}

// targetOf is the target that atTarget named in err, or "".
func targetOf(err error) string {
	if tf, ok := errors.AsType[*targetFailure](err); ok {
		return tf.target
	}
	return ""
}

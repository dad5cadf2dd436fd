package target

import (
	"errors"
	"net/http"
)

// statusError is a request the handler refuses: its status and the
// result it counts as.
type statusError struct {
	status int
	res    result
}

func (e *statusError) Error() string { return http.StatusText(e.status) }

// The refusals; they carry nothing of the request and are never mutated.
var (
	errBadRequest  = &statusError{http.StatusBadRequest, resBadRequest}
	errKeyMismatch = &statusError{http.StatusUnauthorized, resKeyMismatch}
	errMethod      = &statusError{http.StatusMethodNotAllowed, resMethodNotAllowed}
	errMediaType   = &statusError{http.StatusUnsupportedMediaType, resUnsupportedMedia}
	errTooLarge    = &statusError{http.StatusRequestEntityTooLarge, resTooLarge}
)

// internalError is a failure of the target itself while answering: logged
// (never with request data) and answered 500.
type internalError struct {
	step string
	err  error
}

func (e *internalError) Error() string { return e.step + ": " + e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// answerError answers a request that one of its stages ended with err,
// with an empty body: the status, Allow for a 405, no-store, the ODoH media
// type for ODoH (as every ODoH response carries) and text otherwise, and
// the request's count.
func (h *Handler) answerError(w http.ResponseWriter, req request, err error) {
	se, ok := errors.AsType[*statusError](err)
	if !ok {
		if ie, ok := errors.AsType[*internalError](err); ok {
			h.log.Error("answering a query failed", "step", ie.step, "err", ie.err)
		} else {
			h.log.Error("answering a query failed", "err", err)
		}
		se = &statusError{http.StatusInternalServerError, resInternalError}
	}
	hdr := w.Header()
	hdr["Cache-Control"] = hdrNoStore
	hdr["Content-Length"] = hdrZero
	if req.proto == protoODoH {
		hdr["Content-Type"] = hdrODoH
	} else {
		hdr["Content-Type"] = hdrTextPlain
		hdr["X-Content-Type-Options"] = hdrNoSniff
	}
	if se.status == http.StatusMethodNotAllowed {
		hdr["Allow"] = h.allow
	}
	w.WriteHeader(se.status)
	h.observe(req, se.res)
}

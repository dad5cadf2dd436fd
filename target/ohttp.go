package target

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/odohd/odoh/bhttp"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// Paths of the Oblivious HTTP gateway (RFC 9458), served when
// Config.OHTTP.Authorities is set.
const (
	// OHTTPGatewayPath is the Oblivious Gateway Resource: POST
	// message/ohttp-req gets message/ohttp-res; GET gets the key
	// configuration (RFC 9540 §5, §6).
	OHTTPGatewayPath = ohttp.WellKnownGatewayPath
	// OHTTPKeysPath also serves the key configuration as
	// application/ohttp-keys: the URL of Firefox's
	// network.trr.ohttp.config_uri when it fetches keys from the target.
	OHTTPKeysPath = "/ohttp-keys"
)

var (
	hdrOHTTPRes  = []string{ohttp.ResponseContentType}
	hdrOHTTPKeys = []string{ohttp.KeysContentType}
	hdrProblem   = []string{ohttp.ProblemContentType}
	hdrPrivate   = []string{"private, no-store"}

	hdrAllowGateway = []string{"GET, HEAD, POST"}
)

// OHTTPConfig configures the Oblivious HTTP gateway of a Handler: DNS over
// HTTPS (RFC 8484) carried in Binary HTTP (RFC 9292) inside Oblivious HTTP
// (RFC 9458), as Firefox sends it with network.trr.mode and
// network.trr.use_ohttp.
//
// The gateway serves one target resource, the Handler's own DoH path (Path)
// at Authorities, through the same resolution chain, padding and limits as
// ODoH; any other inner scheme, authority or path gets an encapsulated
// error (421, 404), so the gateway never forwards anywhere. Its keys come
// from the Keyring (see OHTTPKEM): same seed, same epochs as ODoH's, their
// own derivation.
//
// Outer errors, which cannot be encapsulated, are 405, 415, 413 and 400,
// and for a key ID the Keyring does not hold (or a KEM or symmetric pair
// the key does not offer) 400 with the ohttp-key problem of RFC 9458 §5.3.
// Every inner answer, errors included, is a 200 message/ohttp-res; the
// Binary HTTP response is padded to a multiple of PaddingBlock bytes.
//
// The gateway keeps no anti-replay state (RFC 9458 §6.5) and ignores Date:
// the one resource it serves is a DNS lookup, which has no effect a replay
// could repeat, and each answer is sealed under a fresh response nonce, so
// a replayed request (which only the relay can send: no 0-RTT) yields
// nothing readable. A Date window (§6.5.1) would refuse Firefox, which
// sends no Date, and a register of enc values over the key lifetime would
// have to be shared by every replica.
type OHTTPConfig struct {
	// Authorities are the inner request authorities the gateway answers
	// for: host or host:port of the DoH URL clients use through OHTTP
	// (Firefox's network.trr.ohttp.uri), compared without regard to case,
	// with ":443" implied. Empty disables the gateway and its key paths.
	Authorities []string
}

func (c *OHTTPConfig) enabled() bool { return len(c.Authorities) > 0 }

// serves reports whether the inner authority a is one of the gateway's.
func (c *OHTTPConfig) serves(a string) bool {
	a = strings.TrimSuffix(a, ":443")
	for _, x := range c.Authorities {
		if strings.EqualFold(strings.TrimSuffix(x, ":443"), a) {
			return true
		}
	}
	return false
}

// serveOHTTP routes the gateway's paths.
func (h *Handler) serveOHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.ohttp.enabled() {
		http.NotFound(w, r)
		return
	}
	gateway := r.URL.Path == OHTTPGatewayPath
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		h.serveOHTTPKeys(w, r)
	case gateway && r.Method == http.MethodPost:
		h.serveGateway(w, r)
	default:
		hdr := w.Header()
		hdr["Allow"] = hdrAllowGet
		if gateway {
			hdr["Allow"] = hdrAllowGateway
		}
		hdr["Cache-Control"] = hdrNoStore
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// serveOHTTPKeys serves the current key configuration, cached no longer
// than the key is accepted (see Keyring).
func (h *Handler) serveOHTTPKeys(w http.ResponseWriter, r *http.Request) {
	h.serveKeys(w, r, hdrOHTTPKeys, "OHTTP key configurations", h.keys.OHTTPConfigs)
}

// serveGateway decapsulates an Encapsulated Request, answers the DoH
// request inside and encapsulates the answer.
func (h *Handler) serveGateway(w http.ResponseWriter, r *http.Request) {
	req := request{proto: protoOHTTP, transport: transportOf(r), start: time.Now()}
	if err := h.gateway(w, r, req); err != nil {
		if errors.Is(err, errOHTTPKey) {
			h.keyProblem(w, req)
			return
		}
		h.answerError(w, req, err)
	}
}

// errOHTTPKey refuses a request for a key the gateway does not hold (or a
// KEM or symmetric pair the key does not offer).
var errOHTTPKey = errors.New("ohttp: unknown key")

// gateway runs the gateway's stages: media type, read, decapsulate, answer
// the inner request, pad, encapsulate.
func (h *Handler) gateway(w http.ResponseWriter, r *http.Request, req request) error {
	if !odoh.HasContentType(r.Header["Content-Type"], ohttp.RequestContentType) {
		return errMediaType
	}
	bp, err := h.readBody(r, h.maxOHTTPBody)
	if err != nil {
		return err
	}
	defer h.putBuf(bp)
	hd, err := ohttp.ParseRequestHeader(*bp)
	if err != nil {
		return errBadRequest
	}
	key := h.keys.LookupOHTTP(hd.KeyID)
	if key == nil {
		return errOHTTPKey
	}
	inner, gw, err := key.DecapsulateRequest(*bp)
	switch {
	case errors.Is(err, odoh.ErrKeyMismatch):
		return errOHTTPKey
	case err != nil:
		return errBadRequest
	}
	dnsBuf := h.getBuf()
	defer h.putBuf(dnsBuf)
	res, result := h.innerDoH(r.Context(), inner, dnsBuf)
	out := h.getBuf()
	defer h.putBuf(out)
	plain, err := res.Append((*out)[:0], bhttp.Encoding{Truncate: true})
	if err == nil {
		if pad := padding(len(plain), h.padding); pad > 0 {
			plain = append(plain, make([]byte, pad)...)
		}
		*out = plain
	}
	var body []byte
	if err == nil {
		body, err = gw.EncapsulateResponse(plain)
	}
	if err != nil {
		return &internalError{"encapsulating answer", err}
	}
	h.write(w, req, result, hdrOHTTPRes, hdrPrivate, body)
	return nil
}

// keyProblem answers a request for a key the gateway does not hold with
// the problem of RFC 9458 §5.3: 400, the same body for every such request.
func (h *Handler) keyProblem(w http.ResponseWriter, req request) {
	body := ohttp.KeyProblem()
	hdr := w.Header()
	hdr["Content-Type"] = hdrProblem
	hdr["Cache-Control"] = hdrNoStore
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	hdr["X-Content-Type-Options"] = hdrNoSniff
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
	h.observe(req, resKeyMismatch)
}

// innerDoH answers the Binary HTTP request found inside an Encapsulated
// Request: a DoH request (RFC 8484 §4.1) for the Handler's own path at one
// of the gateway's authorities, or an error response. The answer is packed
// into *buf, which the response's content aliases.
func (h *Handler) innerDoH(ctx context.Context, inner []byte, buf *[]byte) (*bhttp.Response, result) {
	r, err := bhttp.ParseRequest(inner)
	if err != nil {
		return innerError(http.StatusBadRequest), resBadRequest
	}
	path, rawQuery, _ := strings.Cut(r.Path, "?")
	switch {
	case !strings.EqualFold(r.Scheme, "https") || !h.ohttp.serves(r.Authority):
		// RFC 9110 §15.5.20: not a target this gateway answers for.
		return innerError(http.StatusMisdirectedRequest), resBadRequest
	case path != h.path:
		return innerError(http.StatusNotFound), resBadRequest
	case strings.EqualFold(r.Header.Get("expect"), "100-continue"):
		// RFC 9458 §5.1: the gateway must refuse a 100-continue expectation.
		return innerError(http.StatusExpectationFailed), resBadRequest
	}
	var wire []byte
	switch r.Method {
	case http.MethodPost:
		if !odoh.HasContentType(r.Header.Values("content-type"), odoh.DoHContentType) {
			return innerError(http.StatusUnsupportedMediaType), resUnsupportedMedia
		}
		wire = r.Content
	case http.MethodGet:
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return innerError(http.StatusBadRequest), resBadRequest
		}
		if wire, err = h.dnsParam(q); err != nil {
			se := err.(*statusError)
			return innerError(se.status), se.res
		}
	default:
		e := innerError(http.StatusMethodNotAllowed)
		e.Header = bhttp.Fields{{Name: "allow", Value: "GET, POST"}}
		return e, resMethodNotAllowed
	}
	answer, _, res, err := h.resolve(ctx, wire)
	if err != nil {
		return innerError(http.StatusBadRequest), resBadRequest
	}
	packed, err := packAnswer(answer, *buf)
	if err != nil {
		h.log.Error("answering a query failed", "step", "packing answer", "err", err)
		return innerError(http.StatusInternalServerError), resInternalError
	}
	*buf = packed
	return &bhttp.Response{
		Status: http.StatusOK,
		Header: bhttp.Fields{
			{Name: "content-type", Value: odoh.DoHContentType},
			{Name: "cache-control", Value: dohCacheControl(answer)},
		},
		Content: packed,
	}, res
}

// innerError is an encapsulated error response: a status and no content.
func innerError(status int) *bhttp.Response { return &bhttp.Response{Status: status} }

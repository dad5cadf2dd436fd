package target

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// Handler defaults.
const (
	// DefaultQueryTimeout bounds the resolution of one query, failover
	// included; past it the client gets SERVFAIL.
	DefaultQueryTimeout = 5 * time.Second
	// maxDNSAnswer is the largest DNS answer sealed; larger ones are sent
	// truncated (TC) so that the response fits the 16-bit length fields.
	maxDNSAnswer = 65000
)

// Header values, shared by every response to spare allocations. They are
// read-only: handlers only assign them to header maps, and net/http only
// reads header values, so never append to or modify them.
var (
	hdrODoH      = []string{odoh.ContentType}
	hdrDoH       = []string{odoh.DoHContentType}
	hdrConfigs   = []string{odoh.ConfigsContentType}
	hdrNoStore   = []string{"no-store"}
	hdrZero      = []string{"0"}
	hdrNoSniff   = []string{"nosniff"}
	hdrAllowPost = []string{"POST"}
	hdrAllowBoth = []string{"GET, POST"}
	hdrAllowGet  = []string{"GET, HEAD"}
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
)

// Handler serves DNS over ODoH (RFC 9230) and, when DoH is set, plain DNS
// over HTTPS (RFC 8484), plus the configs endpoint:
//
//	POST Path                      ODoH (odoh.ContentType)
//	POST Path, GET Path?dns=…      DoH (odoh.DoHContentType), if DoH is set
//	GET  odoh.ConfigsPath          the current ObliviousDoHConfigs
//	POST /.well-known/ohttp-gateway  DoH over Oblivious HTTP, if OHTTP is set
//	GET  /.well-known/ohttp-gateway, /ohttp-keys  its key configuration
//
// Statuses follow RFC 9230 §4.3 and §8: 401 for an unknown key ID; 400 for
// a malformed message, a decryption failure, bad padding or an unparsable
// DNS message; 405 for another method (with Allow); 415 for another media
// type (parameters of the media type are ignored); 413 for a body over
// MaxBodySize. Every ODoH response, errors included, carries the ODoH media
// type and "Cache-Control: no-store". A DNS message that parses but is no
// valid query gets FORMERR (or NOTIMP for another opcode) inside a 200;
// a resolution failure or timeout gets SERVFAIL inside a 200. The answer
// always carries the client's DNS ID and is padded to a multiple of
// PaddingBlock bytes (DoH answers when the query had EDNS(0)).
//
// Set the fields before serving and do not change them afterwards.
// The handler logs nothing per request.
type Handler struct {
	// Keys decrypts queries and serves the configs. Required.
	Keys *Keyring
	// Resolver answers the decrypted queries. Required.
	Resolver Resolver
	// DoH also serves plain DNS over HTTPS (RFC 8484) on Path.
	DoH bool
	// Path is the path of DNS queries; "" means odoh.QueryPath.
	Path string
	// MaxBodySize bounds request bodies; zero means the largest query
	// message of the Keyring's suite (odoh.MaxQuerySizeFor), and for the
	// OHTTP gateway ohttp.MaxDNSMessageSize.
	MaxBodySize int
	// QueryTimeout bounds one resolution; zero means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// PaddingBlock pads answers to a multiple of this many bytes (RFC 8467
	// §4.1): ODoH answers inside the encryption, and DoH answers to queries
	// that carry EDNS(0) with the EDNS(0) Padding option (RFC 7830, as RFC
	// 8484 §8 recommends). Zero means odoh.ResponseBlockSize (468), a
	// negative value disables padding.
	PaddingBlock int
	// OHTTP configures the Oblivious HTTP gateway (see OHTTPConfig); the
	// zero value serves none.
	OHTTP OHTTPConfig
	// Metrics, if not nil, counts requests.
	Metrics *Metrics
	// Logger receives internal errors (never request data); nil means
	// slog.Default().
	Logger *slog.Logger

	bufs sync.Pool // of *[]byte
}

// request is the per-request state the handler keeps together.
type request struct {
	proto, transport int
	start            time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := h.Path
	if path == "" {
		path = odoh.QueryPath
	}
	switch r.URL.Path {
	case path:
		h.serveDNS(w, r)
	case odoh.ConfigsPath:
		h.serveConfigs(w, r)
	case OHTTPGatewayPath, OHTTPKeysPath:
		h.serveOHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func transportOf(r *http.Request) int {
	switch r.ProtoMajor {
	case 3:
		return transportH3
	case 2:
		return transportH2
	}
	return transportH1
}

// hasType reports whether the request has one Content-Type header naming
// mediaType, as every role reads it (odoh.HasContentType).
func hasType(r *http.Request, mediaType string) bool {
	return odoh.HasContentType(r.Header["Content-Type"], mediaType)
}

func (h *Handler) serveDNS(w http.ResponseWriter, r *http.Request) {
	req := request{proto: protoODoH, transport: transportOf(r), start: time.Now()}
	switch r.Method {
	case http.MethodPost:
		switch {
		case hasType(r, odoh.ContentType):
			h.serveODoH(w, r, req)
		case h.DoH && hasType(r, odoh.DoHContentType):
			req.proto = protoDoH
			h.serveDoHPost(w, r, req)
		default:
			h.fail(w, req, http.StatusUnsupportedMediaType, ResultUnsupportedMediaType)
		}
	case http.MethodGet:
		if h.DoH {
			req.proto = protoDoH
			h.serveDoHGet(w, r, req)
			return
		}
		h.fail(w, req, http.StatusMethodNotAllowed, ResultMethodNotAllowed)
	default:
		if h.DoH && r.Method == http.MethodHead {
			req.proto = protoDoH
		}
		h.fail(w, req, http.StatusMethodNotAllowed, ResultMethodNotAllowed)
	}
}

// fail answers an error with an empty body. ODoH errors carry the ODoH media
// type, as every ODoH response does.
func (h *Handler) fail(w http.ResponseWriter, req request, status int, res Result) {
	hdr := w.Header()
	hdr["Cache-Control"] = hdrNoStore
	hdr["Content-Length"] = hdrZero
	if req.proto == protoODoH {
		hdr["Content-Type"] = hdrODoH
	} else {
		hdr["Content-Type"] = hdrTextPlain
		hdr["X-Content-Type-Options"] = hdrNoSniff
	}
	if status == http.StatusMethodNotAllowed {
		if h.DoH {
			hdr["Allow"] = hdrAllowBoth
		} else {
			hdr["Allow"] = hdrAllowPost
		}
	}
	w.WriteHeader(status)
	h.Metrics.observeRequest(req.proto, req.transport, res, time.Since(req.start))
}

// readBody reads the request body into a pooled buffer. It returns the
// status to answer on failure (413 over the limit, 400 otherwise).
func (h *Handler) readBody(r *http.Request, limit int) (*[]byte, int) {
	bp := h.getBuf()
	b, err := httpbody.Read(r.Body, (*bp)[:0], r.ContentLength, int64(limit))
	*bp = b
	if err != nil {
		h.putBuf(bp)
		if errors.Is(err, httpbody.ErrTooLarge) {
			return nil, http.StatusRequestEntityTooLarge
		}
		return nil, http.StatusBadRequest
	}
	return bp, 0
}

// maxBody is the request body limit in force.
func (h *Handler) maxBody() int {
	if h.MaxBodySize > 0 {
		return h.MaxBodySize
	}
	return odoh.MaxQuerySizeFor(h.Keys.suite)
}

// maxBodyFor is the body limit of a protocol: an Encapsulated Request
// carries a whole Binary HTTP request around its DNS query.
func (h *Handler) maxBodyFor(proto int) int {
	if proto == protoOHTTP && h.MaxBodySize <= 0 {
		return ohttp.MaxDNSMessageSize
	}
	return h.maxBody()
}

func (h *Handler) getBuf() *[]byte {
	bp, _ := h.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 1024)
		bp = &b
	}
	return bp
}

func (h *Handler) putBuf(bp *[]byte) {
	// Do not keep rare huge buffers around.
	if cap(*bp) <= 8192 {
		*bp = (*bp)[:0]
		h.bufs.Put(bp)
	}
}

// body reads the request body into a pooled buffer, or answers the
// failure (413 over the limit, 400 otherwise) and returns nil.
func (h *Handler) body(w http.ResponseWriter, r *http.Request, req request) *[]byte {
	bp, status := h.readBody(r, h.maxBodyFor(req.proto))
	if status == 0 {
		return bp
	}
	res := ResultBadRequest
	if status == http.StatusRequestEntityTooLarge {
		res = ResultTooLarge
	}
	h.fail(w, req, status, res)
	return nil
}

func (h *Handler) serveODoH(w http.ResponseWriter, r *http.Request, req request) {
	bp := h.body(w, r, req)
	if bp == nil {
		return
	}
	defer h.putBuf(bp)
	m, err := odoh.ParseMessage(*bp)
	if err != nil || m.Type != odoh.MessageTypeQuery {
		h.fail(w, req, http.StatusBadRequest, ResultBadRequest)
		return
	}
	key := h.Keys.Lookup(m.KeyID)
	if key == nil {
		h.fail(w, req, http.StatusUnauthorized, ResultKeyMismatch)
		return
	}
	q, err := key.OpenQuery(m)
	if err != nil {
		if errors.Is(err, odoh.ErrKeyMismatch) {
			h.fail(w, req, http.StatusUnauthorized, ResultKeyMismatch)
		} else {
			h.fail(w, req, http.StatusBadRequest, ResultBadRequest)
		}
		return
	}
	answer, _, res, ok := h.resolve(r.Context(), q.DNS)
	if !ok {
		h.fail(w, req, http.StatusBadRequest, ResultBadRequest)
		return
	}
	out := h.getBuf()
	defer h.putBuf(out)
	wire, err := packAnswer(answer, *out)
	if err != nil {
		h.internalError(w, req, "packing answer", err)
		return
	}
	*out = wire
	body, err := h.seal(q, wire)
	if err != nil {
		h.internalError(w, req, "sealing answer", err)
		return
	}
	hdr := w.Header()
	hdr["Content-Type"] = hdrODoH
	hdr["Cache-Control"] = hdrNoStore
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	h.Metrics.observeRequest(req.proto, req.transport, res, time.Since(req.start))
}

// seal encrypts the answer with the configured padding, which the odoh
// package caps at the size limits.
func (h *Handler) seal(q *odoh.Query, wire []byte) ([]byte, error) {
	return q.SealResponsePadded(wire, q.ResponsePadding(len(wire), h.paddingBlock()))
}

func (h *Handler) internalError(w http.ResponseWriter, req request, what string, err error) {
	h.logger().Error("answering a query failed", "step", what, "err", err)
	h.fail(w, req, http.StatusInternalServerError, ResultInternalError)
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// resolve parses the DNS query and answers it. ok is false when the
// message does not parse (the caller answers 400).
func (h *Handler) resolve(ctx context.Context, wire []byte) (answer, query *dns.Msg, res Result, ok bool) {
	q := new(dns.Msg)
	if err := q.Unpack(wire); err != nil {
		return nil, nil, ResultBadRequest, false
	}
	if q.Response || len(q.Question) != 1 || q.Opcode != dns.OpcodeQuery {
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeFormatError)
		if q.Opcode != dns.OpcodeQuery {
			r.Rcode = dns.RcodeNotImplemented
		}
		r.Question = nil
		r.Id = q.Id
		if len(q.Question) == 1 {
			r.Question = q.Question
		}
		return r, q, ResultOK, true
	}
	timeout := h.QueryTimeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := h.Resolver.Resolve(ctx, q)
	if err != nil || r == nil {
		r = new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
		r.RecursionAvailable = true
		dnscache.SetOPT(r, q) // RFC 6891 §7: an OPT for a query with one
		return r, q, ResultServFail, true
	}
	r.Id = q.Id // echo the client's ID whatever the resolver did
	return r, q, ResultOK, true
}

// padEDNS pads r, once packed, to a multiple of block bytes with the
// EDNS(0) Padding option (RFC 7830), adding an OPT record if r has none and
// replacing any padding r carried. Answers too large to pad stay as they are.
func padEDNS(r *dns.Msg, block int) {
	opt := r.IsEdns0()
	if opt == nil {
		opt = &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(dns.DefaultMsgSize)
		r.Extra = append(r.Extra, opt)
	} else {
		kept := opt.Option[:0:0]
		for _, o := range opt.Option {
			if o.Option() != dns.EDNS0PADDING {
				kept = append(kept, o)
			}
		}
		opt.Option = kept
	}
	// The OPT owner is the root, never compressed: the option adds exactly
	// its 4-byte header and its length to the packed size.
	size := r.Len() + 4
	pad := padding(size, block)
	if size+pad > maxDNSAnswer {
		return
	}
	opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
}

// packAnswer packs r into buf, truncating (TC) an answer too large to seal.
func packAnswer(r *dns.Msg, buf []byte) ([]byte, error) {
	wire, err := r.PackBuffer(buf[:cap(buf)])
	if err != nil {
		return nil, err
	}
	if len(wire) <= maxDNSAnswer {
		return wire, nil
	}
	t := r.Copy()
	t.Truncate(maxDNSAnswer)
	return t.PackBuffer(buf[:cap(buf)])
}

func (h *Handler) serveDoHPost(w http.ResponseWriter, r *http.Request, req request) {
	bp := h.body(w, r, req)
	if bp == nil {
		return
	}
	defer h.putBuf(bp)
	h.answerDoH(w, r.Context(), req, *bp)
}

func (h *Handler) serveDoHGet(w http.ResponseWriter, r *http.Request, req request) {
	wire, status, res := h.dnsParam(r.URL.Query())
	if status != 0 {
		h.fail(w, req, status, res)
		return
	}
	h.answerDoH(w, r.Context(), req, wire)
}

// dnsParam decodes the dns parameter of a DoH GET (RFC 8484 §4.1), or
// returns the status and result to answer: 413 over the body limit, 400 if
// missing or not base64url.
func (h *Handler) dnsParam(q url.Values) ([]byte, int, Result) {
	param := q.Get("dns")
	if base64.RawURLEncoding.DecodedLen(len(param)) > h.maxBody() {
		return nil, http.StatusRequestEntityTooLarge, ResultTooLarge
	}
	wire, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
	if err != nil || len(wire) == 0 {
		return nil, http.StatusBadRequest, ResultBadRequest
	}
	return wire, 0, ResultOK
}

func (h *Handler) answerDoH(w http.ResponseWriter, ctx context.Context, req request, wire []byte) {
	answer, q, res, ok := h.resolve(ctx, wire)
	if !ok {
		h.fail(w, req, http.StatusBadRequest, ResultBadRequest)
		return
	}
	if block := h.paddingBlock(); block > 0 && q.IsEdns0() != nil {
		padEDNS(answer, block)
	}
	out := h.getBuf()
	defer h.putBuf(out)
	body, err := packAnswer(answer, *out)
	if err != nil {
		h.internalError(w, req, "packing answer", err)
		return
	}
	*out = body
	hdr := w.Header()
	hdr["Content-Type"] = hdrDoH
	hdr["Cache-Control"] = []string{dohCacheControl(answer)}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	h.Metrics.observeRequest(req.proto, req.transport, res, time.Since(req.start))
}

// dohCacheControl is the Cache-Control of a DoH answer: RFC 8484 §5.1,
// freshness no longer than the smallest TTL, for answers and negative
// answers; no-store for the rest.
func dohCacheControl(answer *dns.Msg) string {
	if ttl, ok := dnscache.TTL(answer); ok && (answer.Rcode == dns.RcodeSuccess || answer.Rcode == dns.RcodeNameError) {
		return "max-age=" + strconv.FormatUint(uint64(ttl), 10)
	}
	return "no-store"
}

// paddingBlock is the block answers are padded to; 0 means no padding.
func (h *Handler) paddingBlock() int {
	switch {
	case h.PaddingBlock == 0:
		return odoh.ResponseBlockSize
	case h.PaddingBlock < 0:
		return 0
	}
	return h.PaddingBlock
}

// padding returns the bytes that bring n to a multiple of block (RFC 8467
// §4.1 block-length padding).
func padding(n, block int) int {
	if block <= 0 {
		return 0
	}
	return (block - n%block) % block
}

// serveConfigs serves the current ObliviousDoHConfigs with a max-age that
// never outlives the key's acceptance (see Keyring).
func (h *Handler) serveConfigs(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr["Allow"] = hdrAllowGet
		hdr["Cache-Control"] = hdrNoStore
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, maxAge, err := h.Keys.Configs()
	if err != nil {
		h.logger().Error("serving configs failed", "err", err)
		hdr["Cache-Control"] = hdrNoStore
		http.Error(w, "no keys", http.StatusInternalServerError)
		return
	}
	hdr["Content-Type"] = hdrConfigs
	hdr["Cache-Control"] = []string{"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

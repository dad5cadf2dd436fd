package target

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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
	"github.com/odohd/odoh/internal/stack"
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

// Config configures a Handler. Zero values mean the documented defaults.
type Config struct {
	// Keys decrypts queries and serves the configs. Required.
	Keys *Keyring
	// Resolver answers the decrypted queries. Required.
	Resolver Resolver
	// DoH also serves plain DNS over HTTPS (RFC 8484) on Path.
	DoH bool
	// Path is the path of DNS queries; "" means odoh.QueryPath.
	Path string
	// MaxBodySize bounds request bodies (413 beyond); zero means the
	// largest query message of the Keyring's suite (odoh.MaxQuerySizeFor),
	// and for the OHTTP gateway ohttp.MaxDNSMessageSize.
	MaxBodySize int
	// QueryTimeout bounds one resolution, failover included (SERVFAIL
	// beyond); zero means DefaultQueryTimeout.
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
	// Metrics, if not nil, receives a count of each request.
	Metrics Metrics
	// Logger receives internal errors (never request data); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Handler serves DNS over ODoH (RFC 9230) and, with Config.DoH, plain DNS
// over HTTPS (RFC 8484), plus the configs endpoint:
//
//	POST Path                      ODoH (odoh.ContentType)
//	POST Path, GET Path?dns=…      DoH (odoh.DoHContentType), with DoH
//	GET  odoh.ConfigsPath          the current ObliviousDoHConfigs
//	POST /.well-known/ohttp-gateway  DoH over Oblivious HTTP, with OHTTP
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
// Create one with New; it is safe for concurrent use and logs nothing per
// request.
type Handler struct {
	keys         *Keyring
	resolver     Resolver
	doh          bool
	path         string
	maxBody      int
	maxOHTTPBody int // an Encapsulated Request carries a whole Binary HTTP request
	queryTimeout time.Duration
	padding      int // the block; 0: none
	ohttp        OHTTPConfig
	metrics      Metrics
	log          *slog.Logger
	allow        []string // the Allow header of a 405

	bufs   sync.Pool       // of *[]byte
	chunks httpbody.Chunks // of bodies larger than a pooled buffer, as they arrive
}

// New checks c and returns its Handler.
func New(c Config) (*Handler, error) {
	switch {
	case c.Keys == nil:
		return nil, errors.New("target: no keyring")
	case c.Resolver == nil:
		return nil, errors.New("target: no resolver")
	case c.MaxBodySize < 0:
		return nil, fmt.Errorf("target: negative body limit %d", c.MaxBodySize)
	case c.QueryTimeout < 0:
		return nil, fmt.Errorf("target: negative query timeout %v", c.QueryTimeout)
	}
	h := &Handler{
		keys:         c.Keys,
		resolver:     c.Resolver,
		doh:          c.DoH,
		path:         cmp.Or(c.Path, odoh.QueryPath),
		maxBody:      cmp.Or(c.MaxBodySize, odoh.MaxQuerySizeFor(c.Keys.suite)),
		maxOHTTPBody: cmp.Or(c.MaxBodySize, ohttp.MaxDNSMessageSize),
		queryTimeout: cmp.Or(c.QueryTimeout, DefaultQueryTimeout),
		padding:      max(cmp.Or(c.PaddingBlock, odoh.ResponseBlockSize), 0),
		ohttp:        c.OHTTP,
		metrics:      c.Metrics,
		log:          cmp.Or(c.Logger, slog.Default()),
		allow:        hdrAllowPost,
	}
	if h.doh {
		h.allow = hdrAllowBoth
	}
	return h, nil
}

// request is the per-request state the handler keeps together.
type request struct {
	proto, transport int
	start            time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stack.Grow() // net/http runs each HTTP/2 request on a new goroutine
	switch r.URL.Path {
	case h.path:
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

// A DNS request is a few stages, each returning a value or an error: a
// *statusError for what the client did wrong, an *internalError for what
// went wrong here. answerError, the one place that writes errors, turns it
// into the response.

// serveDNS dispatches a DNS request by method and media type.
func (h *Handler) serveDNS(w http.ResponseWriter, r *http.Request) {
	req := request{proto: protoODoH, transport: transportOf(r), start: time.Now()}
	var err error
	switch {
	case r.Method == http.MethodPost && hasType(r, odoh.ContentType):
		err = h.serveODoH(w, r, req)
	case h.doh && (r.Method == http.MethodGet || r.Method == http.MethodPost && hasType(r, odoh.DoHContentType)):
		req.proto = protoDoH
		err = h.serveDoH(w, r, req)
	case r.Method == http.MethodPost:
		err = errMediaType
	default:
		if h.doh && r.Method == http.MethodHead {
			req.proto = protoDoH
		}
		err = errMethod
	}
	if err != nil {
		h.answerError(w, req, err)
	}
}

// serveODoH answers an ODoH query: read, open, resolve, pack, seal.
func (h *Handler) serveODoH(w http.ResponseWriter, r *http.Request, req request) error {
	bp, err := h.readBody(r, h.maxBody)
	if err != nil {
		return err
	}
	defer h.putBuf(bp)
	q, err := h.open(*bp)
	if err != nil {
		return err
	}
	answer, _, res, err := h.resolve(r.Context(), q.DNS)
	if err != nil {
		return err
	}
	out := h.getBuf()
	defer h.putBuf(out)
	if *out, err = packAnswer(answer, *out); err != nil {
		return &internalError{"packing answer", err}
	}
	body, err := h.seal(q, *out)
	if err != nil {
		return &internalError{"sealing answer", err}
	}
	h.write(w, req, res, hdrODoH, hdrNoStore, body)
	return nil
}

// serveDoH answers a plain DoH query (POST body or GET ?dns=): read,
// resolve, pad, pack.
func (h *Handler) serveDoH(w http.ResponseWriter, r *http.Request, req request) error {
	var wire []byte
	if r.Method == http.MethodGet {
		var err error
		if wire, err = h.dnsParam(r.URL.Query()); err != nil {
			return err
		}
	} else {
		bp, err := h.readBody(r, h.maxBody)
		if err != nil {
			return err
		}
		defer h.putBuf(bp)
		wire = *bp
	}
	answer, q, res, err := h.resolve(r.Context(), wire)
	if err != nil {
		return err
	}
	if h.padding > 0 && q.IsEdns0() != nil {
		padEDNS(answer, h.padding)
	}
	out := h.getBuf()
	defer h.putBuf(out)
	if *out, err = packAnswer(answer, *out); err != nil {
		return &internalError{"packing answer", err}
	}
	h.write(w, req, res, hdrDoH, []string{dohCacheControl(answer)}, *out)
	return nil
}

// dohCacheControl is the Cache-Control of a DoH answer: RFC 8484 §5.1,
// freshness no longer than the smallest TTL, for answers and negative
// answers; no-store for the rest.
func dohCacheControl(answer *dns.Msg) string {
	if ttl, ok := dnscache.TTL(answer); ok && (answer.Rcode == dns.RcodeSuccess || answer.Rcode == dns.RcodeNameError) {
		return odoh.CacheControlMaxAge(time.Duration(ttl) * time.Second)
	}
	return "no-store"
}

// padding returns the bytes that bring n to a multiple of block (RFC 8467
// §4.1 block-length padding); none for a block of 0.
func padding(n, block int) int {
	if block <= 0 {
		return 0
	}
	return (block - n%block) % block
}

// readBody reads the request body into a pooled buffer (413 over limit,
// 400 for a broken body).
func (h *Handler) readBody(r *http.Request, limit int) (*[]byte, error) {
	bp := h.getBuf()
	b, err := h.chunks.Read(r.Body, (*bp)[:0], r.ContentLength, int64(limit))
	*bp = b
	if err != nil {
		h.putBuf(bp)
		if errors.Is(err, httpbody.ErrTooLarge) {
			return nil, errTooLarge
		}
		return nil, errBadRequest
	}
	return bp, nil
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
	if cap(*bp) <= httpbody.MaxPooled {
		*bp = (*bp)[:0]
		h.bufs.Put(bp)
	}
}

// dnsParam decodes the dns parameter of a DoH GET (RFC 8484 §4.1): 413
// over the body limit, 400 if missing or not base64url.
func (h *Handler) dnsParam(q url.Values) ([]byte, error) {
	param := q.Get("dns")
	if base64.RawURLEncoding.DecodedLen(len(param)) > h.maxBody {
		return nil, errTooLarge
	}
	wire, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
	if err != nil || len(wire) == 0 {
		return nil, errBadRequest
	}
	return wire, nil
}

// open parses and decrypts an ODoH query: 401 for a key the target does
// not hold, 400 for anything else wrong with it.
func (h *Handler) open(body []byte) (*odoh.Query, error) {
	m, err := odoh.ParseMessage(body)
	if err != nil || m.Type != odoh.MessageTypeQuery {
		return nil, errBadRequest
	}
	key := h.keys.Lookup(m.KeyID)
	if key == nil {
		return nil, errKeyMismatch
	}
	q, err := key.OpenQuery(m)
	switch {
	case errors.Is(err, odoh.ErrKeyMismatch):
		return nil, errKeyMismatch
	case err != nil:
		return nil, errBadRequest
	}
	return q, nil
}

// seal encrypts the answer with the configured padding, which the odoh
// package caps at the size limits.
func (h *Handler) seal(q *odoh.Query, wire []byte) ([]byte, error) {
	return q.SealResponsePadded(wire, q.ResponsePadding(len(wire), h.padding))
}

// write answers 200 with body.
func (h *Handler) write(w http.ResponseWriter, req request, res result, contentType, cacheControl []string, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = contentType
	hdr["Cache-Control"] = cacheControl
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	h.observe(req, res)
}

func (h *Handler) observe(req request, res result) {
	if h.metrics != nil {
		h.metrics.Request(protoNames[req.proto], transportNames[req.transport], resultNames[res], time.Since(req.start))
	}
}

// resolve parses the DNS query and answers it: 400 when the message does
// not parse. A message that is no valid query gets FORMERR (NOTIMP for
// another opcode), a resolution failure SERVFAIL.
func (h *Handler) resolve(ctx context.Context, wire []byte) (answer, query *dns.Msg, res result, err error) {
	q := new(dns.Msg)
	if err := q.Unpack(wire); err != nil {
		return nil, nil, resBadRequest, errBadRequest
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
		return r, q, resOK, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.queryTimeout)
	defer cancel()
	r, err := h.resolver.Resolve(ctx, q)
	if err != nil || r == nil {
		r = new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
		r.RecursionAvailable = true
		dnscache.SetOPT(r, q) // RFC 6891 §7: an OPT for a query with one
		return r, q, resServFail, nil
	}
	r.Id = q.Id // echo the client's ID whatever the resolver did
	return r, q, resOK, nil
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

// serveConfigs serves the current ObliviousDoHConfigs with a max-age that
// never outlives the key's acceptance (see Keyring).
func (h *Handler) serveConfigs(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr := w.Header()
		hdr["Allow"] = hdrAllowGet
		hdr["Cache-Control"] = hdrNoStore
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.serveKeys(w, r, hdrConfigs, "configs", h.keys.Configs)
}

// serveKeys serves a key document (the ODoH configs, the OHTTP key
// configurations) from keys, cached no longer than its key is accepted.
func (h *Handler) serveKeys(w http.ResponseWriter, r *http.Request, contentType []string, what string, keys func() ([]byte, time.Duration, error)) {
	hdr := w.Header()
	body, maxAge, err := keys()
	if err != nil {
		h.log.Error("serving "+what+" failed", "err", err)
		hdr["Cache-Control"] = hdrNoStore
		http.Error(w, "no keys", http.StatusInternalServerError)
		return
	}
	hdr["Content-Type"] = contentType
	hdr["Cache-Control"] = []string{odoh.CacheControlMaxAge(maxAge)}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

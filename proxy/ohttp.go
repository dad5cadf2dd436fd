package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// OHTTPPathPrefix starts the default path of an OHTTP relay resource:
// OHTTPPathPrefix + the gateway's host[:port], e.g. /ohttp/dns.example.
const OHTTPPathPrefix = "/ohttp/"

// OHTTPRelay is one Oblivious Relay Resource (RFC 9458): the proxy forwards
// every Encapsulated Request POSTed to Path to Gateway, one URL to one
// gateway (§8.2), so that no client chooses where it goes. GET at Path
// relays the gateway's key configuration (application/ohttp-keys, fetched
// from the gateway URL as RFC 9540 §6 says), cached once for every client
// like ODoH configs: the URL for Firefox's network.trr.ohttp.config_uri.
//
// The relay path runs the ODoH relay's stages: the per-client rate limit
// and concurrency caps, the body limits and read timeout, the target
// policy and SSRF-safe dialer, the pooled upstream, a request built from
// scratch (Content-Type, Accept and the proxy's User-Agent: nothing of the
// client's), only Content-Type and Cache-Control back with Proxy-Status,
// and the same error statuses; no logs, and metrics by result only.
// A gateway's ohttp-key problem (RFC 9458 §5.3) is relayed and drops the
// cached key configuration older than ConfigsMinAge.
type OHTTPRelay struct {
	// Gateway is the gateway's URL, https://HOST[:PORT]/PATH, e.g.
	// odoh-target's https://dns.example/.well-known/ohttp-gateway.
	// HOST[:PORT] must be an allowed target of the Policy.
	Gateway string
	// Path is the relay resource's path at the proxy; "" means
	// OHTTPPathPrefix + HOST[:PORT] (in lower case).
	Path string
}

// ohttpRelays is the Handler's OHTTP state.
type ohttpRelays struct {
	byPath map[string]*ohttpRelay
	keys   *configCache // the gateways' key configurations
	header http.Header  // of forwarded requests; shared, read-only
	// Body limits: ohttp.MaxDNSMessageSize, or cfg's MaxRequestBody and
	// MaxResponseBody where they are set below their ODoH defaults.
	maxRequest, maxResponse int64
}

// ohttpRelay is one compiled OHTTPRelay.
type ohttpRelay struct {
	path     string // at the proxy
	host     string // the gateway's host[:port], as the policy looks it up
	gwPath   string // the gateway's path
	upstream *url.URL
}

// maxOHTTPKeysSize bounds a gateway's application/ohttp-keys body: one or
// a few key configurations of about 40 bytes each.
const maxOHTTPKeysSize = 1 << 16

var (
	hdrOHTTPKeys = []string{ohttp.KeysContentType}
	allowOHTTP   = []string{"GET, HEAD, POST"}

	errMethodNotOHTTP = &failure{status: http.StatusMethodNotAllowed, kind: odoh.ProxyHTTPRequestError, details: "method not allowed", allow: allowOHTTP}
	errNotOHTTP       = requestError(http.StatusUnsupportedMediaType, "content type must be "+ohttp.RequestContentType)
)

// addOHTTPRelays compiles cfg.OHTTP against the policy pol.
func (h *Handler) addOHTTPRelays(cfg Config, pol *compiledPolicy) error {
	o := &h.ohttp
	o.byPath = make(map[string]*ohttpRelay)
	o.keys = newConfigCache(h, cfg)
	o.keys.maxBody, o.keys.check, o.keys.acceptHeader = maxOHTTPKeysSize, checkOHTTPKeys, hdrOHTTPKeys
	o.header = http.Header{
		"Content-Type": {ohttp.RequestContentType},
		"Accept":       {ohttp.ResponseContentType},
		"User-Agent":   h.upHeader["User-Agent"],
	}
	o.maxRequest = ohttpLimit(cfg.MaxRequestBody, odoh.MaxQuerySize)
	o.maxResponse = ohttpLimit(cfg.MaxResponseBody, odoh.MaxResponseSize)
	for _, c := range cfg.OHTTP {
		rel, err := compileOHTTPRelay(c, pol)
		if err != nil {
			return err
		}
		switch rel.path {
		case odoh.QueryPath, queryPathAlias, odoh.ConfigsPath:
			return fmt.Errorf("proxy: OHTTP relay path %s is the ODoH relay's", rel.path)
		}
		if o.byPath[rel.path] != nil {
			return fmt.Errorf("proxy: two OHTTP relays at %s", rel.path)
		}
		o.byPath[rel.path] = rel
	}
	return nil
}

// ohttpLimit is an OHTTP body limit: ohttp.MaxDNSMessageSize, which
// exceeds the ODoH message limits, unless the operator set limit below the
// ODoH default odohDefault.
func ohttpLimit(limit, odohDefault int64) int64 {
	if limit > 0 && limit < odohDefault {
		return limit
	}
	return ohttp.MaxDNSMessageSize
}

func compileOHTTPRelay(c OHTTPRelay, pol *compiledPolicy) (*ohttpRelay, error) {
	u, err := url.Parse(c.Gateway)
	switch {
	case err != nil:
		return nil, fmt.Errorf("proxy: OHTTP gateway %q: %w", c.Gateway, err)
	case u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("proxy: OHTTP gateway %q: want https://HOST[:PORT]/PATH, e.g. https://dns.example%s", c.Gateway, ohttp.WellKnownGatewayPath)
	case checkTargetPath(u.EscapedPath()) != nil:
		return nil, fmt.Errorf("proxy: OHTTP gateway %q: malformed path", c.Gateway)
	}
	t, err := pol.lookup(u.Host)
	if err != nil {
		return nil, fmt.Errorf("proxy: OHTTP gateway %q: %w", c.Gateway, err)
	}
	if den := pol.check(t); den != nil {
		return nil, fmt.Errorf("proxy: OHTTP gateway %q is not an allowed target (%s): add %s to the allowlist", c.Gateway, den.details, u.Host)
	}
	path := c.Path
	if path == "" {
		path = OHTTPPathPrefix + strings.ToLower(u.Host)
	}
	if !strings.HasPrefix(path, "/") || checkTargetPath(path) != nil {
		return nil, fmt.Errorf("proxy: OHTTP relay path %q: want an absolute path", path)
	}
	return &ohttpRelay{path: path, host: u.Host, gwPath: u.EscapedPath(),
		upstream: &url.URL{Scheme: "https", Host: t.urlHost, Path: u.Path, RawPath: u.RawPath}}, nil
}

// checkOHTTPKeys accepts a body that is a well-framed application/ohttp-keys
// list. A list with no configuration this proxy's ohttp package supports
// is still relayed: clients may support KEMs or algorithms it does not.
func checkOHTTPKeys(body []byte) *failure {
	_, err := ohttp.ParseKeyConfigs(body)
	if err == nil || errors.Is(err, odoh.ErrUnsupported) {
		return nil
	}
	return &failure{status: http.StatusBadGateway, kind: odoh.ProxyHTTPProtocolError, err: fmt.Errorf("gateway keys: %w", err)}
}

// serveOHTTP relays an Encapsulated Request to rel's gateway, or its key
// configuration.
func (h *Handler) serveOHTTP(w http.ResponseWriter, r *http.Request, rel *ohttpRelay) {
	err := h.relayOHTTP(w, r, rel)
	switch {
	case err == nil:
	case errors.Is(err, errClientGone):
		h.metrics.OHTTPRequest(resultNames[resClientClosed])
	default:
		h.metrics.OHTTPRequest(resultNames[h.writeFailure(w, r, err).result()])
	}
}

func (h *Handler) relayOHTTP(w http.ResponseWriter, r *http.Request, rel *ohttpRelay) (err error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return h.relayOHTTPKeys(w, r, rel)
	}
	if r.Method != http.MethodPost {
		return errMethodNotOHTTP
	}
	client := clientKey(r.RemoteAddr)
	if err := h.admit(client); err != nil {
		return err
	}
	defer h.leave(client)
	if !odoh.HasContentType(r.Header["Content-Type"], ohttp.RequestContentType) {
		return errNotOHTTP
	}
	t, err := h.gateway(rel)
	if err != nil {
		return err
	}
	defer func() { err = atTarget(t, err) }()
	ex := h.getExchange()
	defer ex.release()
	if err = h.readRequestBody(w, r, ex, h.ohttp.maxRequest); err != nil {
		return err
	}
	if err := h.enter(); err != nil {
		return err
	}
	defer h.exit()
	resp, err := h.forward(r, rel.upstream, h.ohttp.header, ex, h.ohttp.maxResponse)
	if err != nil {
		return err
	}
	if err := checkResponse(resp, ohttp.ResponseContentType); err != nil {
		return err
	}
	if ohttp.IsKeyProblem(resp.StatusCode, resp.Header["Content-Type"], ex.resp) {
		// The gateway rotated its keys: clients refetch them through us.
		h.ohttp.keys.markStale(t, rel.gwPath)
	}
	h.writeRelayed(w, resp, ex.resp)
	h.metrics.OHTTPRequest(resultNames[resForwarded])
	return nil
}

// relayOHTTPKeys answers GET with the gateway's key configuration, always
// typed application/ohttp-keys and checked to be one.
func (h *Handler) relayOHTTPKeys(w http.ResponseWriter, r *http.Request, rel *ohttpRelay) error {
	client := clientKey(r.RemoteAddr)
	if err := h.admit(client); err != nil {
		return err
	}
	defer h.leave(client)
	t, err := h.gateway(rel)
	if err != nil {
		return err
	}
	e, err := h.ohttp.keys.get(r.Context(), t, rel.gwPath)
	if err != nil {
		return atTarget(t, getError(r, err))
	}
	h.ohttp.keys.write(w, r, e, hdrOHTTPKeys)
	h.metrics.OHTTPRequest(resultNames[resConfigs])
	return nil
}

// gateway looks rel's gateway up in the policy in force, which may have
// changed since New (SetPolicy): 403 once it is no longer allowed.
func (h *Handler) gateway(rel *ohttpRelay) (*target, error) {
	pol := h.policy.Load()
	t, err := pol.lookup(rel.host)
	if err != nil {
		return nil, &failure{status: http.StatusForbidden, kind: odoh.ProxyHTTPRequestDenied, details: "gateway not allowed"}
	}
	if den := pol.check(t); den != nil {
		return nil, atTarget(t, &failure{status: http.StatusForbidden, kind: den.kind, details: den.details})
	}
	return t, nil
}

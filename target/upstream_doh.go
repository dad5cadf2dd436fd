package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dohUpstream asks a DNS-over-HTTPS resolver with POST over a pooled
// HTTP/2 client.
type dohUpstream struct {
	url    string
	client *http.Client
	tr     *http.Transport
}

func newDoHUpstream(u *url.URL, t *tls.Config, o UpstreamOptions) *dohUpstream {
	tr := &http.Transport{
		DialContext:         o.Dialer.DialContext,
		TLSClientConfig:     t,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: o.MaxIdleConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: o.Timeout,
	}
	return &dohUpstream{url: u.String(), tr: tr, client: &http.Client{
		Transport: tr,
		// A resolver that redirects is misconfigured; do not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (d *dohUpstream) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	// RFC 8484 §4.1: ID 0 in DoH; the ID check in exchangeID needs ours back.
	id := q.Id
	q.Id = 0
	wire, err := q.Pack()
	q.Id = id
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", dohContentType)
	req.Header.Set("Accept", dohContentType)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.EqualFold(ct, dohContentType) {
		return nil, fmt.Errorf("content type %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoHResponse+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDoHResponse {
		return nil, errors.New("answer too large")
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, err
	}
	r.Id = id
	return r, nil
}

func (d *dohUpstream) close() { d.tr.CloseIdleConnections() }

package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/miekg/dns"
	"github.com/odohd/odoh/internal/httpbody"
	"github.com/odohd/odoh/odoh"
)

// dohUpstream asks a DNS-over-HTTPS resolver with POST over a pooled
// HTTP/2 client.
type dohUpstream struct {
	url    string
	client *http.Client
	tr     *http.Transport
}

func newDoHUpstream(u *url.URL, t *tls.Config, o UpstreamsConfig) *dohUpstream {
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

func (d *dohUpstream) exchange(ctx context.Context, deadline time.Time, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
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
	req.Header.Set("Content-Type", odoh.DoHContentType)
	req.Header.Set("Accept", odoh.DoHContentType)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if ct := resp.Header["Content-Type"]; !odoh.HasContentType(ct, odoh.DoHContentType) {
		return nil, fmt.Errorf("content type %q", ct)
	}
	body, err := httpbody.Read(resp.Body, nil, resp.ContentLength, maxDoHResponse)
	if err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, err
	}
	r.Id = id
	return r, nil
}

func (d *dohUpstream) close() { d.tr.CloseIdleConnections() }

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
	"github.com/odohd/odoh/internal/buildinfo"
)

// runQuery looks the questions up one after the other and prints each
// answer as it comes. A failed question does not stop the others; the
// exit status is then 1.
func runQuery(e *env, o *clientFlags, qa *queryArgs, jsonOut bool) error {
	if len(qa.questions) == 0 {
		return usageErr("no name to look up: give NAME, such as odoh example.com AAAA")
	}
	opts := &qa.opts
	jsonOut = jsonOut || opts.json
	if jsonOut && opts.short {
		return usageErr("+short and -json exclude each other: give one")
	}
	if len(qa.proxies) > 0 {
		o.proxies = append(urlList(nil), qa.proxies...) // @PROXY wins over -proxy and ODOH_PROXY
	}
	o.http3 = o.http3 || opts.http3
	if opts.timeout > 0 {
		o.timeout = opts.timeout
	}
	logs, err := newDeferredLogger(o.log, e.stderr)
	if err != nil {
		return &exitError{2, err}
	}
	c, err := o.newClient(logs.logger)
	if err != nil {
		logs.flush(err)
		return err
	}
	defer c.Close()
	ver := buildinfo.Read(version).Version
	var errs []error
	for _, q := range qa.questions {
		x, err := exchangeOne(e, c, q, opts)
		if err != nil {
			if len(qa.questions) > 1 {
				err = fmt.Errorf("%s %s: %w", q.name, typeString(q.qtype), err)
			}
			errs = append(errs, err)
			continue
		}
		if jsonOut {
			if err := json.NewEncoder(e.stdout).Encode(jsonAnswer(x)); err != nil {
				return err
			}
		} else {
			writeText(e.stdout, x, opts, ver)
		}
	}
	err = errors.Join(errs...)
	logs.flush(err)
	if len(errs) == 1 {
		return errs[0]
	}
	return err
}

// exchangeOne sends one question.
func exchangeOne(e *env, c *client.Client, q question, o *digOptions) (*exchange, error) {
	m := buildQuery(q, o)
	wire, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the query: %w", err)
	}
	r, err := c.Do(e.ctx, wire)
	if err != nil {
		return nil, err
	}
	a := new(dns.Msg)
	if err := a.Unpack(r.DNS); err != nil {
		return nil, fmt.Errorf("unpacking the answer from %s: %w", r.Target, err)
	}
	return &exchange{q: q, query: m, answer: a, size: len(r.DNS), duration: r.Duration,
		proxy: r.Proxy, target: r.Target, when: time.Now()}, nil
}

// buildQuery makes the query message of a question.
func buildQuery(q question, o *digOptions) *dns.Msg {
	m := &dns.Msg{}
	m.Id = dns.Id()
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = o.rec
	m.AuthenticatedData = o.ad
	m.CheckingDisabled = o.cd
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	if o.edns {
		m.SetEdns0(o.bufsize, o.dnssec)
		if o.nsid {
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}
	}
	return m
}

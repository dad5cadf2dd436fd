package target

import "github.com/miekg/dns"

// EDNS(0) options are per hop and some are per client: ECS (RFC 7871)
// carries the client's subnet and is echoed in the answer, a COOKIE (RFC
// 7873) identifies the client. None of them may travel from one client's
// answer to another's, nor identify a client to the upstream.

// hasPrivateOption reports whether q carries an option that ties the
// answer to its sender (ECS or COOKIE): such answers are not cached.
func hasPrivateOption(q *dns.Msg) bool {
	opt := q.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		switch o.Option() {
		case dns.EDNS0SUBNET, dns.EDNS0COOKIE:
			return true
		}
	}
	return false
}

// dropCookies removes COOKIE options from opt, in place. A client's
// cookie is meant for the target; forwarded, it would let the upstream link
// the client's queries.
func dropCookies(opt *dns.OPT) {
	kept := opt.Option[:0]
	for _, o := range opt.Option {
		if o.Option() != dns.EDNS0COOKIE {
			kept = append(kept, o)
		}
	}
	opt.Option = kept
}

// stripOPT removes the OPT record from r's additional section.
func stripOPT(r *dns.Msg) {
	kept := r.Extra[:0:0]
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			kept = append(kept, rr)
		}
	}
	r.Extra = kept
}

// answerOPT replaces r's OPT record with a fresh one for the requester q:
// none if q had none (RFC 6891 §7), else q's UDP size and DO bit. From r's
// own OPT it keeps only Extended DNS Errors (RFC 8914, about the answer)
// and, when echoECS is set, ECS (the echo of q's own subnet, RFC 7871 §7.2);
// everything else the upstream sent (its cookie, NSID, padding, another
// client's ECS) is dropped.
func answerOPT(r, q *dns.Msg, echoECS bool) {
	var kept []dns.EDNS0
	if old := r.IsEdns0(); old != nil {
		for _, o := range old.Option {
			switch o.Option() {
			case dns.EDNS0EDE:
				kept = append(kept, o)
			case dns.EDNS0SUBNET:
				if echoECS {
					kept = append(kept, o)
				}
			}
		}
		stripOPT(r)
	}
	qopt := q.IsEdns0()
	if qopt == nil {
		if r.Rcode > 0xF {
			// An extended RCODE needs an OPT the requester cannot read.
			r.Rcode = dns.RcodeServerFailure
		}
		return
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: kept}
	opt.SetUDPSize(max(qopt.UDPSize(), dns.MinMsgSize))
	opt.SetDo(qopt.Do())
	r.Extra = append(r.Extra, opt)
}

// hasECS reports whether q carries an ECS option.
func hasECS(q *dns.Msg) bool {
	if opt := q.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0SUBNET {
				return true
			}
		}
	}
	return false
}

package dnscache

import (
	"bytes"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnsname"
)

// key is what a cached answer is stored under.
type key struct {
	name   string // lower case
	qtype  uint16
	qclass uint16
	do, cd bool // DNSSEC OK and Checking Disabled change the answer
}

func keyOf(q *dns.Msg) key {
	qq := q.Question[0]
	k := key{name: dnsname.Lower(qq.Name), qtype: qq.Qtype, qclass: qq.Qclass, cd: q.CheckingDisabled}
	if opt := q.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

// String is the key as the coalescing group's string.
func (k key) String() string {
	flags := byte(0)
	if k.do {
		flags |= 1
	}
	if k.cd {
		flags |= 2
	}
	return string([]byte{byte(k.qtype >> 8), byte(k.qtype), byte(k.qclass >> 8), byte(k.qclass), flags}) + k.name
}

// upstreamQuery is the query a cache sends for k: q's question and header
// bits, and an OPT record of its own (UpstreamUDPSize, k's DO bit, no
// option), so that nothing of one requester's EDNS(0) travels on when its
// query stands for others. AD is set to ask for the AD bit (RFC 6840 §5.7);
// reply clears it for requesters that did not ask.
func upstreamQuery(q *dns.Msg, k key) *dns.Msg {
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:                q.Id,
			Opcode:            dns.OpcodeQuery,
			RecursionDesired:  q.RecursionDesired,
			CheckingDisabled:  q.CheckingDisabled,
			AuthenticatedData: true,
		},
		Question: []dns.Question{q.Question[0]},
	}
	m.SetEdns0(UpstreamUDPSize, k.do)
	return m
}

// ForwardQuery returns the copy of q to send upstream when q is forwarded
// as it is: without COOKIE options. A client's cookie is meant for the hop
// it sent it to; forwarded, it would let the upstream link its queries.
func ForwardQuery(q *dns.Msg) *dns.Msg {
	m := q.Copy()
	if opt := m.IsEdns0(); opt != nil {
		DropCookies(opt)
	}
	return m
}

func hasCookie(q *dns.Msg) bool {
	if opt := q.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0COOKIE {
				return true
			}
		}
	}
	return false
}

// DropCookies removes COOKIE options from opt, in place.
func DropCookies(opt *dns.OPT) {
	kept := opt.Option[:0]
	for _, o := range opt.Option {
		if o.Option() != dns.EDNS0COOKIE {
			kept = append(kept, o)
		}
	}
	opt.Option = kept
}

// CheckRepacks reports whether answer r, packed again, is a message a
// client can read: the rule for every answer a resolver of ours relays
// (the target's from its upstreams, the stub's from the target). The DNS
// library unpacks some records it cannot pack back: one with empty RDATA
// unpacks to a record whose domain names pack to nothing (an SOA, a TSIG),
// which a client then reads as garbage. Such an answer is its sender's
// failure, never relayed.
func CheckRepacks(r *dns.Msg) error { return CheckRepacksFrom(r, nil) }

// CheckRepacksFrom is CheckRepacks for an answer r unpacked from wire:
// when r packs back to exactly wire, the bytes are the ones that just
// unpacked, and the second unpacking is skipped. An answer packed without
// compression by this library packs back so; a compressed one (Unbound's)
// packs back so with compression. That proves what CheckRepacks does: the
// two packings differ only in the names a pointer replaces, and a
// compressed packing checks every name up to its pointer, whose target is
// a name it packed in full; so each name packs uncompressed too, to the
// labels it unpacked from, which unpack again.
func CheckRepacksFrom(r *dns.Msg, wire []byte) error {
	if wire != nil && firstRecordCompressed(wire) {
		m := *r
		m.Compress = true
		if again, err := m.Pack(); err == nil && bytes.Equal(again, wire) {
			return nil
		}
	}
	again, err := r.Pack()
	if err == nil && (wire == nil || !bytes.Equal(again, wire)) {
		err = new(dns.Msg).Unpack(again)
	}
	if err != nil {
		return fmt.Errorf("answer cannot be relayed: %w", err)
	}
	return nil
}

// firstRecordCompressed reports whether the owner of the first record
// after wire's one question is a compression pointer, as it is in every
// compressed answer with records. It only picks the packing compared with
// first; either comparison is sound.
func firstRecordCompressed(wire []byte) bool {
	if len(wire) < 12 || wire[4] != 0 || wire[5] != 1 {
		return false
	}
	off := 12
	for off < len(wire) && wire[off] != 0 {
		if wire[off]&0xC0 != 0 {
			return false
		}
		off += 1 + int(wire[off])
	}
	off += 5 // the root label, QTYPE and QCLASS
	return off < len(wire) && wire[off]&0xC0 == 0xC0
}

// keep returns r as stored: without its OPT record, with its Extended DNS
// Errors aside.
func keep(r *dns.Msg, now time.Time) *stored {
	ede, _ := answerOptions(r)
	stripOPT(r)
	return &stored{msg: r, ede: ede, at: now, expires: now}
}

// reply builds the answer to q from a stored answer: a copy with q's ID,
// question and header bits, TTLs counted down and at most the entry's
// remaining lifetime (so that no downstream cache keeps it longer than
// this one), or StaleTTL for a stale answer, AD only for requesters that asked for it (RFC 6840 §5.8) and an
// OPT record made for q, with "Stale Answer" (RFC 8914) added if stale.
func reply(q *dns.Msg, a *stored, now time.Time, stale bool) *dns.Msg {
	r := a.msg.Copy()
	r.Id = q.Id
	r.Question = append([]dns.Question(nil), q.Question...)
	r.RecursionDesired = q.RecursionDesired
	r.CheckingDisabled = q.CheckingDisabled
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	if !q.AuthenticatedData && !do {
		r.AuthenticatedData = false
	}
	age, left := uint32(0), ^uint32(0)
	if d := now.Sub(a.at); d > 0 {
		age = uint32(min(d/time.Second, 1<<31))
	}
	if a.expires.After(a.at) { // a cached answer, not one passed on
		left = 0
		if d := a.expires.Sub(now); d > 0 {
			left = uint32(min((d+time.Second-1)/time.Second, 1<<31))
		}
	}
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			switch {
			case stale:
				h.Ttl = StaleTTL
			default:
				h.Ttl = min(h.Ttl-min(age, h.Ttl), left)
			}
		}
	}
	ede := a.ede
	if stale {
		ede = append(ede[:len(ede):len(ede)], &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer})
	}
	setOPT(r, q, ede, nil)
	return r
}

// HasECS reports whether q carries an ECS option (RFC 7871).
func HasECS(q *dns.Msg) bool {
	if opt := q.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if o.Option() == dns.EDNS0SUBNET {
				return true
			}
		}
	}
	return false
}

// answerOptions returns the options of r's OPT record that may reach a
// requester: its Extended DNS Errors (about the answer, RFC 8914) and its
// ECS echo (only for the requester whose ECS it echoes).
func answerOptions(r *dns.Msg) (ede, ecs []dns.EDNS0) {
	opt := r.IsEdns0()
	if opt == nil {
		return nil, nil
	}
	for _, o := range opt.Option {
		switch o.Option() {
		case dns.EDNS0EDE:
			ede = append(ede, o)
		case dns.EDNS0SUBNET:
			ecs = append(ecs, o)
		}
	}
	return ede, ecs
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

// SetOPT gives r, an answer to q, the OPT record q is owed: none if q had
// none (RFC 6891 §7), else one with q's UDP size (at least 512) and DO bit
// and the given options, replacing any OPT r had. For example, answers from
// local data get SetOPT(r, q) and no option.
func SetOPT(r, q *dns.Msg, opts ...dns.EDNS0) {
	stripOPT(r)
	setOPT(r, q, opts, nil)
}

func setOPT(r, q *dns.Msg, ede, ecs []dns.EDNS0) {
	qopt := q.IsEdns0()
	if qopt == nil {
		if r.Rcode > 0xF {
			// An extended RCODE needs an OPT the requester cannot read.
			r.Rcode = dns.RcodeServerFailure
		}
		return
	}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	if n := len(ede) + len(ecs); n > 0 {
		opt.Option = make([]dns.EDNS0, 0, n)
		opt.Option = append(append(opt.Option, ede...), ecs...)
	}
	opt.SetUDPSize(max(qopt.UDPSize(), dns.MinMsgSize))
	opt.SetDo(qopt.Do())
	r.Extra = append(r.Extra, opt)
}

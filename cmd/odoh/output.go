package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// exchange is one question's query, answer and where it went.
type exchange struct {
	q        question
	query    *dns.Msg
	answer   *dns.Msg
	size     int // the answer's wire size
	duration time.Duration
	proxy    string // "" in direct mode
	target   string
	when     time.Time
}

// writeText writes an exchange as dig does, with the proxy and the target
// where dig names its server.
func writeText(w io.Writer, x *exchange, o *digOptions, version string) {
	var b strings.Builder
	if o.short {
		for _, rr := range x.answer.Answer {
			b.WriteString(rdataText(rr) + "\n")
		}
		_, _ = io.WriteString(w, b.String())
		return
	}
	if o.cmd {
		typed := x.q.typed
		if x.q.typed != x.q.name && !x.q.reverseAddress && !strings.EqualFold(dns.Fqdn(x.q.typed), x.q.name) {
			typed += " (" + x.q.name + ")"
		}
		if x.q.reverseAddress {
			typed = "-x " + typed
		}
		fmt.Fprintf(&b, "\n; <<>> odoh %s <<>> %s %s %s\n", version, typed, classString(x.q.qclass), typeString(x.q.qtype))
	}
	if o.qr {
		if o.comments {
			b.WriteString(";; Sending:\n")
		}
		writeMessage(&b, x.query, o)
	}
	if o.comments {
		b.WriteString(";; Got answer:\n")
	}
	writeMessage(&b, x.answer, o)
	if o.stats {
		fmt.Fprintf(&b, ";; Query time: %d msec\n", x.duration.Milliseconds())
		if x.proxy != "" {
			fmt.Fprintf(&b, ";; PROXY: %s\n", x.proxy)
		} else {
			b.WriteString(";; PROXY: none (-direct: the target saw your address)\n")
		}
		fmt.Fprintf(&b, ";; TARGET: %s\n", x.target)
		fmt.Fprintf(&b, ";; WHEN: %s\n", x.when.Format("Mon Jan 02 15:04:05 MST 2006"))
		fmt.Fprintf(&b, ";; MSG SIZE  rcvd: %d\n", x.size)
		b.WriteString("\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// writeMessage writes m's header and sections in dig's layout.
func writeMessage(b *strings.Builder, m *dns.Msg, o *digOptions) {
	opt := m.IsEdns0()
	if o.comments {
		// Unpack merged the OPT record's extended RCODE bits into Rcode.
		fmt.Fprintf(b, ";; ->>HEADER<<- opcode: %s, status: %s, id: %d\n", opcodeString(m.Opcode), rcodeString(m.Rcode), m.Id)
		fmt.Fprintf(b, ";; flags: %s; QUERY: %d, ANSWER: %d, AUTHORITY: %d, ADDITIONAL: %d\n",
			strings.Join(headerFlags(m), " "), len(m.Question), len(m.Answer), len(m.Ns), len(m.Extra))
		b.WriteString("\n")
		if opt != nil {
			b.WriteString(";; OPT PSEUDOSECTION:\n")
			writeOPT(b, opt)
		}
	}
	if o.question && len(m.Question) > 0 {
		if o.comments {
			b.WriteString(";; QUESTION SECTION:\n")
		}
		for _, q := range m.Question {
			line := ";" + q.Name
			line = padTo(line, 32) + classString(q.Qclass)
			line = padTo(line, 40) + typeString(q.Qtype)
			b.WriteString(line + "\n")
		}
		if o.comments {
			b.WriteString("\n")
		}
	}
	sections := []struct {
		show bool
		name string
		rrs  []dns.RR
	}{{o.answer, "ANSWER", m.Answer}, {o.authority, "AUTHORITY", m.Ns}, {o.additional, "ADDITIONAL", m.Extra}}
	for _, s := range sections {
		var rrs []dns.RR
		for _, rr := range s.rrs {
			if rr.Header().Rrtype != dns.TypeOPT {
				rrs = append(rrs, rr)
			}
		}
		if !s.show || len(rrs) == 0 {
			continue
		}
		if o.comments {
			b.WriteString(";; " + s.name + " SECTION:\n")
		}
		for _, rr := range rrs {
			b.WriteString(rrText(rr) + "\n")
		}
		if o.comments {
			b.WriteString("\n")
		}
	}
}

// headerFlags are the header's flags in dig's order.
func headerFlags(m *dns.Msg) []string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return out
}

func opcodeString(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return "OPCODE" + strconv.Itoa(op)
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func classString(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

// writeOPT writes the OPT record as dig's pseudosection.
func writeOPT(b *strings.Builder, opt *dns.OPT) {
	flags := ""
	if opt.Do() {
		flags = " do"
	}
	fmt.Fprintf(b, "; EDNS: version: %d, flags:%s; udp: %d\n", opt.Version(), flags, opt.UDPSize())
	for _, o := range opt.Option {
		name, text := ednsOption(o)
		if text == "" {
			fmt.Fprintf(b, "; %s\n", name)
			continue
		}
		fmt.Fprintf(b, "; %s: %s\n", name, text)
	}
}

// ednsOption names an EDNS option and renders its data as dig does.
func ednsOption(o dns.EDNS0) (string, string) {
	switch v := o.(type) {
	case *dns.EDNS0_EDE:
		s := strconv.Itoa(int(v.InfoCode))
		if p, ok := dns.ExtendedErrorCodeToString[v.InfoCode]; ok {
			s += " (" + p + ")"
		}
		if v.ExtraText != "" {
			s += ": (" + v.ExtraText + ")"
		}
		return "EDE", s
	case *dns.EDNS0_NSID:
		raw, err := hex.DecodeString(v.Nsid)
		if err != nil || len(raw) == 0 {
			return "NSID", v.Nsid
		}
		var hx []string
		for _, c := range raw {
			hx = append(hx, fmt.Sprintf("%02x", c))
		}
		return "NSID", strings.Join(hx, " ") + ` ("` + printable(raw) + `")`
	case *dns.EDNS0_SUBNET:
		return "CLIENT-SUBNET", v.String()
	case *dns.EDNS0_COOKIE:
		return "COOKIE", v.Cookie
	case *dns.EDNS0_PADDING:
		return "PAD", fmt.Sprintf("(%d bytes)", len(v.Padding))
	}
	return "OPT=" + strconv.Itoa(int(o.Option())), o.String()
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}

// rrText formats a record as dig does: tab stops at columns 24, 32, 40
// and 48, and a space where a field is too wide for its column.
func rrText(rr dns.RR) string {
	h := rr.Header()
	line := padTo(h.Name, 24) + strconv.FormatUint(uint64(h.Ttl), 10)
	line = padTo(line, 32) + classString(h.Class)
	line = padTo(line, 40) + typeString(h.Rrtype)
	return padTo(line, 48) + rdataText(rr)
}

// padTo pads s with tabs to column col (tab stops every 8), or with a
// space if it reaches that far already.
func padTo(s string, col int) string {
	n := column(s)
	if n >= col {
		return s + " "
	}
	for ; n < col; n = n - n%8 + 8 {
		s += "\t"
	}
	return s
}

// column is the column at which s ends, tabs expanded.
func column(s string) int {
	n := 0
	for _, c := range s {
		if c == '\t' {
			n = n - n%8 + 8
		} else {
			n++
		}
	}
	return n
}

// rdataText is a record's data in presentation format; SVCB and HTTPS
// parameters come in key order with values quoted only where RFC 9460's
// presentation needs it.
func rdataText(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.SVCB:
		return svcbText(v)
	case *dns.HTTPS:
		return svcbText(&v.SVCB)
	}
	// miekg/dns writes name, TTL, class, type and data apart by tabs (a
	// name's tabs are escaped).
	if f := strings.SplitN(rr.String(), "\t", 5); len(f) == 5 {
		return f[4]
	}
	return ""
}

func svcbText(v *dns.SVCB) string {
	parts := []string{strconv.Itoa(int(v.Priority)), v.Target}
	for _, kv := range v.Value {
		val := kv.String()
		switch kv.(type) {
		case *dns.SVCBAlpn, *dns.SVCBDoHPath, *dns.SVCBLocal:
			val = strconv.Quote(val)
		case *dns.SVCBNoDefaultAlpn:
			parts = append(parts, kv.Key().String())
			continue
		}
		parts = append(parts, kv.Key().String()+"="+val)
	}
	return strings.Join(parts, " ")
}

package target

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/internal/dnscache"
	"github.com/odohd/odoh/internal/dnsname"
)

// Zone is local authoritative data loaded from an RFC 1035 zone file: the
// target answers names inside it itself and sends everything else to the
// upstreams. A file may hold several zones; each SOA record starts one.
//
// Inside a zone, Answer gives the records of the name and type (following
// CNAMEs inside the zone data), NODATA (NOERROR with the SOA) when the name
// exists without that type, wildcard answers from "*.<closest encloser>",
// and NXDOMAIN with the SOA otherwise. Delegations (NS records below an
// apex) are not followed: the zone answers for everything below its apex.
// A Zone is immutable and safe for concurrent use.
type Zone struct {
	apexes map[string]*dns.SOA            // zone apex (lower case) → SOA
	names  map[string]map[uint16][]dns.RR // owner (lower case) → type → records
	// exists holds every owner name and every empty non-terminal.
	exists map[string]bool
	count  int
}

// maxCNAMEChain bounds CNAME chasing inside the zone data.
const maxCNAMEChain = 8

// LoadZone reads a zone file. $ORIGIN and $INCLUDE follow RFC 1035;
// $INCLUDE is disabled, so a zone file cannot read other files.
func LoadZone(path string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading zone: %w", err)
	}
	defer f.Close()
	return ParseZone(f, "", path)
}

// ParseZone parses zone data in RFC 1035 format. origin is the initial
// $ORIGIN ("" if the data sets it) and file names the source in errors.
func ParseZone(r io.Reader, origin, file string) (*Zone, error) {
	z := &Zone{
		apexes: make(map[string]*dns.SOA),
		names:  make(map[string]map[uint16][]dns.RR),
		exists: make(map[string]bool),
	}
	if origin != "" {
		origin = dns.Fqdn(origin)
	}
	zp := dns.NewZoneParser(r, origin, file)
	buf := make([]byte, dns.MaxMsgSize)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("zone %s: %s: only class IN is served", file, h.Name)
		}
		// The parser accepts records that cannot be sent (an MB with no
		// target, say); refuse them now rather than fail every answer
		// that carries them.
		if _, err := dns.PackRR(rr, buf, 0, nil, false); err != nil {
			return nil, fmt.Errorf("zone %s: %s %s: %w", file, h.Name, dns.TypeToString[h.Rrtype], err)
		}
		name := dnsname.Lower(h.Name)
		h.Name = name
		if soa, ok := rr.(*dns.SOA); ok {
			if _, dup := z.apexes[name]; dup {
				return nil, fmt.Errorf("zone %s: two SOA records for %s", file, name)
			}
			z.apexes[name] = soa
		}
		byType := z.names[name]
		if byType == nil {
			byType = make(map[uint16][]dns.RR)
			z.names[name] = byType
		}
		byType[h.Rrtype] = append(byType[h.Rrtype], rr)
		z.count++
	}
	if err := zp.Err(); err != nil {
		// A parse error names the file already.
		if pe, ok := err.(*dns.ParseError); ok && file != "" && strings.HasPrefix(pe.Error(), file+": ") {
			return nil, fmt.Errorf("zone file %w (want RFC 1035 zone data, lines such as \"www IN A 192.0.2.1\")", err)
		}
		return nil, fmt.Errorf("zone %s: %w", file, err)
	}
	if len(z.apexes) == 0 {
		return nil, fmt.Errorf("zone %s: no SOA record", file)
	}
	for name, byType := range z.names {
		if z.apex(name) == "" {
			return nil, fmt.Errorf("zone %s: %s is outside every zone (no SOA above it)", file, name)
		}
		if len(byType[dns.TypeCNAME]) > 0 && len(byType) > 1 {
			return nil, fmt.Errorf("zone %s: %s has a CNAME and other data", file, name)
		}
		// Mark the name and its ancestors up to the apex as existing.
		apex := z.apex(name)
		for n := name; ; {
			z.exists[n] = true
			if n == apex {
				break
			}
			off, end := dns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[off:]
		}
	}
	return z, nil
}

// Len returns the number of records in the zone.
func (z *Zone) Len() int { return z.count }

// apex returns the closest zone apex at or above name (lower case), or "".
func (z *Zone) apex(name string) string {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if _, ok := z.apexes[name[off:]]; ok {
			return name[off:]
		}
	}
	if _, ok := z.apexes["."]; ok {
		return "."
	}
	return ""
}

// Answer answers q from the zone data. It returns false when q's name is
// outside every zone (the caller asks the upstreams). The answer's ID and
// question are q's, and it has an OPT record, with q's UDP size and DO bit,
// when q has one (RFC 6891 §7).
func (z *Zone) Answer(q *dns.Msg) (*dns.Msg, bool) {
	r, ok := z.answer(q)
	if ok {
		dnscache.SetOPT(r, q)
	}
	return r, ok
}

func (z *Zone) answer(q *dns.Msg) (*dns.Msg, bool) {
	if z == nil || len(q.Question) != 1 {
		return nil, false
	}
	question := q.Question[0]
	name := dnsname.Lower(question.Name)
	apex := z.apex(name)
	if apex == "" || question.Qclass != dns.ClassINET {
		return nil, false
	}
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	r.RecursionAvailable = q.RecursionDesired
	qtype := question.Qtype
	for i := 0; ; i++ {
		byType, owner, found := z.lookup(name, apex)
		if !found {
			// RFC 6604: the rcode is that of the last name of a chain.
			r.Rcode = dns.RcodeNameError
			r.Ns = z.negative(apex)
			return r, true
		}
		if qtype == dns.TypeANY {
			for _, rrs := range byType {
				r.Answer = append(r.Answer, synth(rrs, owner, name)...)
			}
			return r, true
		}
		if rrs := byType[qtype]; len(rrs) > 0 {
			r.Answer = append(r.Answer, synth(rrs, owner, name)...)
			return r, true
		}
		cname := byType[dns.TypeCNAME]
		if len(cname) == 0 {
			r.Ns = z.negative(apex) // NODATA
			return r, true
		}
		r.Answer = append(r.Answer, synth(cname, owner, name)...)
		target := dnsname.Lower(cname[0].(*dns.CNAME).Target)
		if i >= maxCNAMEChain {
			return r, true
		}
		if apex = z.apex(target); apex == "" {
			// The chain leaves our data; the client resolves the rest.
			return r, true
		}
		name = target
	}
}

// lookup returns the records of name, or of the wildcard that covers it.
// owner is the name the records are stored under.
func (z *Zone) lookup(name, apex string) (map[uint16][]dns.RR, string, bool) {
	if byType, ok := z.names[name]; ok {
		return byType, name, true
	}
	if z.exists[name] {
		return nil, name, true // empty non-terminal: NODATA
	}
	// Closest encloser, then its wildcard (RFC 4592).
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		enc := name[off:]
		if !z.exists[enc] && enc != apex {
			continue
		}
		wild := "*." + enc
		if enc == "." {
			wild = "*."
		}
		if byType, ok := z.names[wild]; ok {
			return byType, wild, true
		}
		return nil, "", false
	}
	return nil, "", false
}

// synth returns rrs, renamed to name when they come from a wildcard.
func synth(rrs []dns.RR, owner, name string) []dns.RR {
	if !strings.HasPrefix(owner, "*.") && owner != "*." {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = name
		out[i] = c
	}
	return out
}

// negative returns the authority section of a negative answer: the SOA with
// the TTL RFC 2308 §3 asks for, min(SOA TTL, SOA MINIMUM).
func (z *Zone) negative(apex string) []dns.RR {
	soa := z.apexes[apex]
	if soa.Hdr.Ttl <= soa.Minttl {
		return []dns.RR{soa}
	}
	c := dns.Copy(soa).(*dns.SOA)
	c.Hdr.Ttl = soa.Minttl
	return []dns.RR{c}
}

// errNoResolver is the error of a Chain with nothing to ask.
var errNoResolver = errors.New("no upstream configured")

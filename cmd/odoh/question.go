package main

import (
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

// question is one name, type and class to look up.
type question struct {
	// typed is the name as the user gave it (Unicode for an IDN, the
	// address for -x), for the header line.
	typed string
	// name is the fully qualified name asked, in ASCII (punycode).
	name           string
	qtype, qclass  uint16
	typeGiven      bool
	classGiven     bool
	reverseAddress bool
}

// digOptions are dig's +options this CLI knows. They apply to every
// question of the run, wherever they appear.
type digOptions struct {
	short, json, http3 bool
	dnssec, cd, ad     bool
	rec, edns, nsid    bool
	qr                 bool
	bufsize            uint16
	timeout            time.Duration // 0: -timeout
	// What the text output shows (dig's +[no]cmd, +[no]comments, …).
	cmd, comments, question, answer, authority, additional, stats bool
}

// defaultDigOptions are dig's defaults: recursion desired, EDNS with a
// 1232-byte buffer (the DNS flag day 2020 size), every section shown.
func defaultDigOptions() digOptions {
	return digOptions{rec: true, edns: true, bufsize: 1232,
		cmd: true, comments: true, question: true, answer: true, authority: true, additional: true, stats: true}
}

// digOptionDocs documents the +options, for the help, the manual and the
// completions.
var digOptionDocs = []struct{ name, usage string }{
	{"+short", "print only the answers' data, one per line"},
	{"+json", "JSON output, one object per question (as -json)"},
	{"+dnssec", "set the DNSSEC OK (DO) bit, asking for signatures (also +do)"},
	{"+cd", "set the Checking Disabled bit: no DNSSEC validation by the resolver (also +cdflag)"},
	{"+ad", "set the Authentic Data bit, asking whether the answer was validated (also +adflag)"},
	{"+norec", "clear Recursion Desired: the target answers from its zone and cache only (+rec sets it, the default)"},
	{"+noedns", "send no EDNS (OPT) record (+edns sends one, the default)"},
	{"+bufsize=N", "the EDNS UDP payload size to advertise (default 1232)"},
	{"+nsid", "ask for the resolver's name server ID (EDNS NSID, RFC 5001)"},
	{"+http3", "talk HTTP/3 (QUIC) instead of HTTP/2 (as -http3); +tcp and +vc, HTTP/2 over TCP, are the default"},
	{"+timeout=N", "give up after N seconds, or a duration such as 1500ms (also +time=N; as -timeout)"},
	{"+qr", "print the query too, as sent"},
	{"+noall", "show nothing, then +answer, +question, … add back what to show (+all shows everything)"},
	{"+nocmd", "no header line (+cmd)"},
	{"+nocomments", "no comment lines: header, flags, section names (+comments)"},
	{"+noquestion", "no question section (+question)"},
	{"+noanswer", "no answer section (+answer)"},
	{"+noauthority", "no authority section (+authority)"},
	{"+noadditional", "no additional section (+additional)"},
	{"+nostats", "no query time, proxy, target, date and size (+stats)"},
}

// set applies one +option.
func (o *digOptions) set(arg string) error {
	name, value, hasValue := strings.Cut(strings.ToLower(arg[1:]), "=")
	on := true
	if n, ok := strings.CutPrefix(name, "no"); ok && n != "" {
		name, on = n, false
	}
	flags := map[string]*bool{
		"short": &o.short, "json": &o.json, "http3": &o.http3,
		"dnssec": &o.dnssec, "do": &o.dnssec, "cd": &o.cd, "cdflag": &o.cd, "ad": &o.ad, "adflag": &o.ad,
		"rec": &o.rec, "recurse": &o.rec, "edns": &o.edns, "nsid": &o.nsid, "qr": &o.qr,
		"cmd": &o.cmd, "comments": &o.comments, "question": &o.question, "answer": &o.answer,
		"authority": &o.authority, "additional": &o.additional, "stats": &o.stats,
	}
	if p, ok := flags[name]; ok && !hasValue {
		*p = on
		return nil
	}
	switch {
	case name == "all" && !hasValue:
		o.cmd, o.comments, o.question, o.answer, o.authority, o.additional, o.stats = on, on, on, on, on, on, on
		return nil
	case (name == "tcp" || name == "vc") && !hasValue:
		if !on {
			return usageErr("%s: queries travel over HTTPS, HTTP/2 on TCP unless +http3 (QUIC): there is no UDP to choose", arg)
		}
		return nil // HTTP/2 runs on TCP: the default
	case (name == "time" || name == "timeout") && hasValue && on:
		d, err := parseSeconds(value)
		if err != nil {
			return usageErr("%s: %v", arg, err)
		}
		o.timeout = d
		return nil
	case name == "bufsize" && hasValue && on:
		n, err := strconv.ParseUint(value, 10, 16)
		if err != nil {
			return usageErr("%s: want a size from 0 to 65535", arg)
		}
		o.bufsize = uint16(n)
		return nil
	}
	return usageErr("unknown option %s: the +options are %s", arg, digOptionNames())
}

func digOptionNames() string {
	var names []string
	for _, d := range digOptionDocs {
		names = append(names, d.name)
	}
	return strings.Join(names, " ")
}

// parseSeconds reads dig's +time: whole seconds, or a Go duration.
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want seconds or a duration such as 1500ms, not %q", s)
	}
	return d, nil
}

// queryArgs are the command line of a query, sorted out.
type queryArgs struct {
	questions []question
	opts      digOptions
	// flags are the arguments for the flag set, in order.
	flags []string
	// proxies are the @PROXY arguments.
	proxies []string
}

// digFlags are the flags that take part in the questions' order and are
// parsed here, not by the flag set: -x ADDR, -q NAME, -t TYPE, -c CLASS.
var digFlags = map[string]bool{"x": true, "q": true, "t": true, "c": true}

// digFlagDocs documents them.
var digFlagDocs = []struct{ name, usage string }{
	{"-x ADDR", "look the IPv4 or IPv6 address ADDR up in reverse (PTR under in-addr.arpa or ip6.arpa)"},
	{"-t TYPE", "the type of the questions that give none (default A)"},
	{"-c CLASS", "the class of the questions that give none (default IN)"},
	{"-q NAME", "look NAME up, even if it reads like a type or an option"},
}

// parseQueryArgs sorts a query's command line into questions, +options,
// @proxies and the flags for fs (whose definitions say which flags take a
// value). Several names, and several types after a name, make several
// questions.
func parseQueryArgs(args []string, fs *flag.FlagSet) (*queryArgs, error) {
	qa := &queryArgs{opts: defaultDigOptions()}
	p := &questionParser{qa: qa, cur: -1}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for _, n := range args[i+1:] {
				if err := p.name(n, false); err != nil {
					return nil, err
				}
			}
			i = len(args)
		case strings.HasPrefix(a, "+") && len(a) > 1:
			if err := qa.opts.set(a); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "@") && len(a) > 1:
			qa.proxies = append(qa.proxies, a[1:])
		case strings.HasPrefix(a, "-") && len(a) > 1:
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if digFlags[name] {
				if !hasValue {
					if i+1 >= len(args) {
						return nil, usageErr("-%s needs a value", name)
					}
					i++
					value = args[i]
				}
				if err := p.digFlag(name, value); err != nil {
					return nil, err
				}
				continue
			}
			qa.flags = append(qa.flags, a)
			f := fs.Lookup(name)
			if f != nil && !hasValue && !isBoolFlag(f) && i+1 < len(args) {
				i++
				qa.flags = append(qa.flags, args[i])
			}
		default:
			if err := p.word(a); err != nil {
				return nil, err
			}
		}
	}
	return qa, p.finish()
}

// questionParser builds the questions of a command line.
type questionParser struct {
	qa                *queryArgs
	defType, defClass uint16
	pending           []uint16 // types given before their name (odoh MX example.com)
	// cur is the index of the current name's first question (-1: none
	// yet): the types and the class after a name apply to its questions.
	cur int
}

func (p *questionParser) name(typed string, reverse bool) error {
	q, err := newQuestion(typed, reverse)
	if err != nil {
		return err
	}
	p.qa.questions = append(p.qa.questions, q)
	p.cur = len(p.qa.questions) - 1
	for _, t := range p.pending {
		if err := p.addType(t); err != nil {
			return err
		}
	}
	p.pending = nil
	return nil
}

func (p *questionParser) digFlag(name, value string) error {
	switch name {
	case "x":
		return p.name(value, true)
	case "q":
		return p.name(value, false)
	case "t":
		t, ok := parseType(value, true)
		if !ok {
			return usageErr("-t %q: unknown type; give a type such as A, AAAA, MX, HTTPS, TYPE65 or 65", value)
		}
		p.defType = t
	case "c":
		c, ok := parseClass(value)
		if !ok {
			return usageErr("-c %q: unknown class; give IN, CH, HS or CLASSnnn", value)
		}
		p.defClass = c
	}
	return nil
}

// word is a positional word: a type or class of the current name, a type
// before its name, or a name.
func (p *questionParser) word(a string) error {
	if p.cur < 0 {
		if t, ok := parseType(a, false); ok {
			p.pending = append(p.pending, t)
			return nil
		}
		return p.name(a, false)
	}
	if t, ok := parseType(a, true); ok {
		return p.addType(t)
	}
	if c, ok := parseClass(a); ok && !p.qa.questions[p.cur].classGiven {
		for i := p.cur; i < len(p.qa.questions); i++ {
			p.qa.questions[i].qclass, p.qa.questions[i].classGiven = c, true
		}
		return nil
	}
	return p.name(a, false)
}

// addType gives the current name type t; a second type after one name
// asks the name again with that type.
func (p *questionParser) addType(t uint16) error {
	if t == dns.TypeAXFR || t == dns.TypeIXFR {
		return usageErr("%s: zone transfers do not run over ODoH (one query and one answer message each)", dns.TypeToString[t])
	}
	qs := p.qa.questions
	if !qs[p.cur].typeGiven {
		qs[p.cur].qtype, qs[p.cur].typeGiven = t, true
		return nil
	}
	n := qs[p.cur]
	n.qtype = t
	p.qa.questions = append(qs, n)
	return nil
}

// finish fills in the default types and classes.
func (p *questionParser) finish() error {
	if len(p.pending) > 0 {
		return usageErr("no name to look up: give NAME with the type, such as odoh example.com %s", dns.TypeToString[p.pending[0]])
	}
	for i := range p.qa.questions {
		q := &p.qa.questions[i]
		if !q.typeGiven {
			q.qtype = dns.TypeA
			if q.reverseAddress {
				q.qtype = dns.TypePTR
			}
			if p.defType != 0 {
				q.qtype = p.defType
			}
		}
		if !q.classGiven {
			q.qclass = dns.ClassINET
			if p.defClass != 0 {
				q.qclass = p.defClass
			}
		}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseType reads a record type: a mnemonic (any case), TYPEnnn, or, when
// numeric is true, a bare number (as the type after a name).
func parseType(s string, numeric bool) (uint16, bool) {
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok && t != dns.TypeNone && t != dns.TypeReserved {
		return t, true
	}
	if n, ok := strings.CutPrefix(u, "TYPE"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), true
		}
	}
	if numeric {
		if v, err := strconv.ParseUint(s, 10, 16); err == nil && v > 0 {
			return uint16(v), true
		}
	}
	return 0, false
}

// parseClass reads a class: IN, CH, HS, NONE, ANY or CLASSnnn.
func parseClass(s string) (uint16, bool) {
	u := strings.ToUpper(s)
	if u == "ANY" {
		return 0, false // ANY is the type
	}
	if c, ok := dns.StringToClass[u]; ok {
		return c, true
	}
	if n, ok := strings.CutPrefix(u, "CLASS"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), true
		}
	}
	return 0, false
}

// idnProfile converts internationalized names to their ASCII form for a
// lookup (UTS #46 with the mapping of lookups), without STD3's rules, so
// that labels such as _dmarc stay usable.
var idnProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule(), idna.StrictDomainName(false))

// newQuestion checks a name (or, for reverse, an address) and makes its
// question; the type and class come later.
func newQuestion(typed string, reverse bool) (question, error) {
	q := question{typed: typed, reverseAddress: reverse}
	if reverse {
		ip := net.ParseIP(strings.Trim(typed, "[]"))
		if ip == nil {
			return q, usageErr("-x %q: not an IP address; give an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1", typed)
		}
		name, err := dns.ReverseAddr(ip.String())
		if err != nil {
			return q, usageErr("-x %q: %v", typed, err)
		}
		q.name = name
		return q, nil
	}
	name := typed
	if !isASCII(name) {
		a, err := idnProfile.ToASCII(strings.TrimSuffix(name, "."))
		if err != nil {
			return q, usageErr("%q is not a valid internationalized domain name (%v)", typed, err)
		}
		name = a
	}
	name = dns.Fqdn(name)
	if _, ok := dns.IsDomainName(name); !ok || strings.Contains(name, "..") && name != "." {
		return q, usageErr("%q is not a domain name: labels are at most 63 bytes, names at most 255, and no label is empty", typed)
	}
	if len(name) > 255 {
		return q, usageErr("%q is longer than a domain name can be (255 bytes)", typed)
	}
	q.name = name
	return q, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

package main

import (
	"encoding/base64"
	"encoding/hex"
	"net"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/miekg/dns"
)

// jsonQuestion is a question: a name, a type and a class, nothing else.
type jsonQuestion struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class"`
}

// jsonRR is a record: its header, its data in presentation format, and
// the data's fields (named after miekg/dns's, in snake case).
type jsonRR struct {
	Name  string         `json:"name"`
	Type  string         `json:"type"`
	Class string         `json:"class"`
	TTL   uint32         `json:"ttl"`
	Data  string         `json:"data"`
	RData map[string]any `json:"rdata,omitempty"`
}

type jsonEDNS struct {
	Version uint8        `json:"version"`
	Flags   []string     `json:"flags"`
	UDPSize uint16       `json:"udp_size"`
	Options []jsonOption `json:"options,omitempty"`
}

type jsonOption struct {
	Code uint16 `json:"code"`
	Name string `json:"name"`
	Data string `json:"data"`
}

// jsonResult is one question's outcome, as -json prints it: one object a
// line, so that several questions make a stream jq reads.
type jsonResult struct {
	Status     string         `json:"status"`
	Opcode     string         `json:"opcode"`
	ID         uint16         `json:"id"`
	Flags      []string       `json:"flags"`
	Question   []jsonQuestion `json:"question"`
	Answer     []jsonRR       `json:"answer"`
	Authority  []jsonRR       `json:"authority"`
	Additional []jsonRR       `json:"additional"`
	EDNS       *jsonEDNS      `json:"edns,omitempty"`
	TimeMS     float64        `json:"time_ms"`
	Size       int            `json:"size"`
	Proxy      string         `json:"proxy,omitempty"`
	Target     string         `json:"target"`
	When       string         `json:"when"`
}

func jsonAnswer(x *exchange) jsonResult {
	a := x.answer
	res := jsonResult{
		Status: rcodeString(a.Rcode), Opcode: opcodeString(a.Opcode), ID: a.Id,
		Flags:    headerFlags(a),
		Question: []jsonQuestion{},
		Answer:   jsonRRs(a.Answer), Authority: jsonRRs(a.Ns), Additional: jsonRRs(a.Extra),
		TimeMS: float64(x.duration.Microseconds()) / 1000, Size: x.size,
		Proxy: x.proxy, Target: x.target, When: x.when.UTC().Format(time.RFC3339),
	}
	if res.Flags == nil {
		res.Flags = []string{}
	}
	for _, q := range a.Question {
		res.Question = append(res.Question, jsonQuestion{Name: q.Name, Type: typeString(q.Qtype), Class: classString(q.Qclass)})
	}
	if opt := a.IsEdns0(); opt != nil {
		e := &jsonEDNS{Version: opt.Version(), Flags: []string{}, UDPSize: opt.UDPSize()}
		if opt.Do() {
			e.Flags = append(e.Flags, "do")
		}
		for _, o := range opt.Option {
			name, text := ednsOption(o)
			e.Options = append(e.Options, jsonOption{Code: o.Option(), Name: name, Data: text})
		}
		res.EDNS = e
	}
	return res
}

func jsonRRs(rrs []dns.RR) []jsonRR {
	out := []jsonRR{}
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, jsonRR{Name: h.Name, Type: typeString(h.Rrtype), Class: classString(h.Class),
			TTL: h.Ttl, Data: rdataText(rr), RData: rdataFields(rr)})
	}
	return out
}

// rdataFields returns a record's data fields by name: SVCB and HTTPS
// parameters as an object of their keys, addresses, names and numbers as
// themselves, type lists as type names, binary fields in the encoding the
// presentation format uses (hex or base64, as miekg/dns holds them).
func rdataFields(rr dns.RR) map[string]any {
	switch v := rr.(type) {
	case *dns.SVCB:
		return svcbFields(v)
	case *dns.HTTPS:
		return svcbFields(&v.SVCB)
	case *dns.RFC3597:
		return map[string]any{"rdata": v.Rdata}
	}
	out := map[string]any{}
	addFields(out, reflect.ValueOf(rr).Elem())
	if len(out) == 0 {
		return nil
	}
	return out
}

func addFields(out map[string]any, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Name == "Hdr" || !f.IsExported() {
			continue
		}
		if f.Anonymous && fv.Kind() == reflect.Struct {
			addFields(out, fv)
			continue
		}
		name := snake(f.Name)
		switch x := fv.Interface().(type) {
		case net.IP:
			out[name] = x.String()
		case []uint16:
			if f.Name == "TypeBitMap" {
				names := make([]string, len(x))
				for j, t := range x {
					names[j] = typeString(t)
				}
				out[name] = names
			} else {
				out[name] = x
			}
		case uint16:
			if f.Name == "TypeCovered" {
				out[name] = typeString(x)
			} else {
				out[name] = x
			}
		case string, []string, uint8, uint32, uint64, bool:
			out[name] = x
		case []byte:
			out[name] = hex.EncodeToString(x)
		default:
			if s, ok := fv.Interface().(interface{ String() string }); ok {
				out[name] = s.String()
			}
		}
	}
}

// snake turns a Go field name into snake case: KeyTag → key_tag,
// AAAA → aaaa.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// svcbFields structures an SVCB or HTTPS record (RFC 9460): priority,
// target and its parameters, each as its type says.
func svcbFields(v *dns.SVCB) map[string]any {
	params := map[string]any{}
	for _, kv := range v.Value {
		key := kv.Key().String()
		switch p := kv.(type) {
		case *dns.SVCBMandatory:
			keys := []string{}
			for _, k := range p.Code {
				keys = append(keys, k.String())
			}
			params[key] = keys
		case *dns.SVCBAlpn:
			params[key] = append([]string{}, p.Alpn...)
		case *dns.SVCBNoDefaultAlpn:
			params[key] = true
		case *dns.SVCBPort:
			params[key] = p.Port
		case *dns.SVCBIPv4Hint:
			params[key] = ipStrings(p.Hint)
		case *dns.SVCBIPv6Hint:
			params[key] = ipStrings(p.Hint)
		case *dns.SVCBECHConfig:
			params[key] = base64.StdEncoding.EncodeToString(p.ECH)
		case *dns.SVCBDoHPath:
			params[key] = p.Template
		case *dns.SVCBOhttp:
			params[key] = true
		default:
			params[key] = kv.String()
		}
	}
	mode := "service"
	if v.Priority == 0 {
		mode = "alias"
	}
	return map[string]any{"priority": v.Priority, "mode": mode, "target": v.Target, "params": params}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

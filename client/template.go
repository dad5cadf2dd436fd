package client

import (
	"fmt"
	"net/url"
	"strings"
)

// ProxyTemplate is a validated proxy URI: either an RFC 6570 Level 3
// template holding the variables targethost and targetpath (RFC 9230 §4.1),
// such as
//
//	https://proxy.example/dns-query{?targethost,targetpath}
//	https://proxy.example/proxy/{targethost}/{targetpath}
//
// or a plain https URL, to which the client appends
// ?targethost=…&targetpath=… (the form dnscrypt-proxy and odoh-client-go use).
type ProxyTemplate struct {
	raw   string
	parts []tmplPart // literal and expression parts; nil for a plain URL
	plain *url.URL
}

type tmplPart struct {
	literal string
	op      byte     // 0 for a literal; ' ' for a simple expression
	vars    []string // variable names, for expressions
}

// ParseProxyTemplate validates s as RFC 9230 §4.1 (checklist C1, C2)
// requires: the scheme is https; targethost and targetpath appear exactly
// once each, no other variable appears, and no variable is in the authority.
// A string without expressions is a plain https URL.
func ParseProxyTemplate(s string) (*ProxyTemplate, error) {
	if !strings.ContainsAny(s, "{}") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: %w", s, err)
		}
		if u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
			return nil, fmt.Errorf("proxy %q: not an https URL", s)
		}
		if u.Path == "" {
			u.Path = "/"
		}
		if err := checkOwnParams(u); err != nil {
			return nil, fmt.Errorf("proxy %q: %w", s, err)
		}
		return &ProxyTemplate{raw: s, plain: u}, nil
	}
	t := &ProxyTemplate{raw: s}
	seen := map[string]int{}
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{literal: rest})
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("proxy template %q: unbalanced '}'", s)
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{literal: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("proxy template %q: unterminated expression", s)
		}
		expr := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		op := byte(' ')
		if expr != "" && strings.IndexByte("+./;?&", expr[0]) >= 0 {
			op, expr = expr[0], expr[1:]
		} else if expr != "" && strings.IndexByte("#=,!@|", expr[0]) >= 0 {
			// '#' would put a variable in the fragment; the others are reserved.
			return nil, fmt.Errorf("proxy template %q: operator %q not allowed", s, expr[0])
		}
		var vars []string
		for v := range strings.SplitSeq(expr, ",") {
			if v != "targethost" && v != "targetpath" {
				return nil, fmt.Errorf("proxy template %q: variable %q not allowed (only targethost and targetpath)", s, v)
			}
			seen[v]++
			vars = append(vars, v)
		}
		t.parts = append(t.parts, tmplPart{op: op, vars: vars})
	}
	for _, v := range []string{"targethost", "targetpath"} {
		if seen[v] != 1 {
			return nil, fmt.Errorf("proxy template %q: variable %s appears %d times, want once", s, v, seen[v])
		}
	}
	// The literal prefix must hold the scheme and the whole authority, so
	// that no variable can choose the host the client connects to.
	prefix := ""
	if len(t.parts) > 0 && t.parts[0].op == 0 {
		prefix = t.parts[0].literal
	}
	const scheme = "https://"
	if !strings.HasPrefix(strings.ToLower(prefix), scheme) {
		return nil, fmt.Errorf("proxy template %q: not an https template", s)
	}
	auth := prefix[len(scheme):]
	end := strings.IndexAny(auth, "/?")
	if end <= 0 {
		return nil, fmt.Errorf("proxy template %q: variable in the authority", s)
	}
	if strings.IndexByte(auth[:end], '@') >= 0 {
		return nil, fmt.Errorf("proxy template %q: userinfo not allowed", s)
	}
	if strings.IndexByte(s, '#') >= 0 {
		return nil, fmt.Errorf("proxy template %q: fragment not allowed", s)
	}
	// The expansion must be a valid https URL.
	u, err := url.Parse(t.Expand(probeHost, probePath))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("proxy template %q: expansion is not an https URL", s)
	}
	if err := checkOwnParams(u); err != nil {
		return nil, fmt.Errorf("proxy template %q: %w", s, err)
	}
	// A query-form variable must come back as a query parameter: a
	// literal '?' before {?…} would make it "?targethost", which no proxy
	// reads.
	q := u.Query()
	for _, p := range t.parts {
		if p.op != '?' && p.op != '&' {
			continue
		}
		for _, v := range p.vars {
			want := probeHost
			if v == "targetpath" {
				want = probePath
			}
			if got := q[v]; len(got) != 1 || got[0] != want {
				return nil, fmt.Errorf("proxy template %q: %s does not expand to a query parameter", s, v)
			}
		}
	}
	return t, nil
}

// Values expanded to probe a template's shape.
const (
	probeHost = "odoh-probe.invalid"
	probePath = "/odoh-probe"
)

// checkOwnParams refuses a proxy URL that already carries targethost or
// targetpath of its own: the expansion would then hold two, and a proxy
// that takes the first would send the query to a target the user never
// chose.
func checkOwnParams(u *url.URL) error {
	q := u.Query()
	for name, probe := range map[string]string{"targethost": probeHost, "targetpath": probePath} {
		if v := q[name]; len(v) > 1 || len(v) == 1 && v[0] != probe {
			return fmt.Errorf("it sets %s itself", name)
		}
	}
	return nil
}

// String returns the template as given.
func (t *ProxyTemplate) String() string { return t.raw }

// Origin returns scheme://host[:port] of the proxy.
func (t *ProxyTemplate) Origin() string {
	u, err := url.Parse(t.Expand(probeHost, probePath))
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Host returns the proxy's host[:port].
func (t *ProxyTemplate) Host() string {
	u, err := url.Parse(t.Expand(probeHost, probePath))
	if err != nil {
		return ""
	}
	return u.Host
}

// Expand returns the proxy URL for a target host ("host" or "host:port")
// and path, following RFC 6570 (so '/' in targetpath becomes %2F in the
// query and simple forms, RFC 9230 checklist C3).
func (t *ProxyTemplate) Expand(targetHost, targetPath string) string {
	vals := map[string]string{"targethost": targetHost, "targetpath": targetPath}
	if t.plain != nil {
		u := *t.plain
		q := url.Values{"targethost": {targetHost}, "targetpath": {targetPath}}.Encode()
		if u.RawQuery != "" {
			u.RawQuery += "&" + q
		} else {
			u.RawQuery = q
		}
		return u.String()
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.op == 0 {
			b.WriteString(p.literal)
			continue
		}
		first, sep, named, allowReserved := "", ",", false, false
		switch p.op {
		case '+':
			allowReserved = true
		case '.':
			first, sep = ".", "."
		case '/':
			first, sep = "/", "/"
		case ';':
			first, sep, named = ";", ";", true
		case '?':
			first, sep, named = "?", "&", true
		case '&':
			first, sep, named = "&", "&", true
		}
		for i, v := range p.vars {
			if i == 0 {
				b.WriteString(first)
			} else {
				b.WriteString(sep)
			}
			if named {
				b.WriteString(v)
				b.WriteByte('=')
			}
			pctEncode(&b, vals[v], allowReserved)
		}
	}
	return b.String()
}

// pctEncode writes s percent-encoded as RFC 6570 §3.2.1 requires: everything
// but unreserved characters (and '/' too for '+', see below).
func pctEncode(b *strings.Builder, s string, allowReserved bool) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		// Reserved expansion ({+targetpath}) keeps only '/' literal: a '?',
		// '#' or '&' of the target's path must not start the proxy URL's
		// query or fragment, nor '%' forge an escape.
		case allowReserved && c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

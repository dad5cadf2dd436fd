package client

import (
	"errors"
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

// ParseProxyTemplate validates s as RFC 9230 §4.1 requires: the scheme is
// https; targethost and targetpath appear exactly once each, no other
// variable appears, and no variable is in the authority. A string without
// expressions is a plain https URL.
func ParseProxyTemplate(s string) (*ProxyTemplate, error) {
	if !strings.ContainsAny(s, "{}") {
		return parsePlainProxy(s)
	}
	parts, err := splitTemplate(s)
	if err == nil {
		err = checkTemplate(s, parts)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy template %q: %w", s, err)
	}
	return &ProxyTemplate{raw: s, parts: parts}, nil
}

// parsePlainProxy reads a proxy given as a plain https URL.
func parsePlainProxy(s string) (*ProxyTemplate, error) {
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

// splitTemplate cuts a template into literals and expressions.
func splitTemplate(s string) ([]tmplPart, error) {
	var parts []tmplPart
	for rest := s; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		switch {
		case i < 0:
			return append(parts, tmplPart{literal: rest}), nil
		case rest[i] == '}':
			return nil, errors.New("unbalanced '}'")
		case i > 0:
			parts = append(parts, tmplPart{literal: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, errors.New("unterminated expression")
		}
		p, err := parseExpression(rest[i+1 : i+j])
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		rest = rest[i+j+1:]
	}
	return parts, nil
}

// parseExpression reads the inside of {…}: an optional operator and
// variables, which must be targethost or targetpath.
func parseExpression(expr string) (tmplPart, error) {
	op := byte(' ')
	if expr != "" && strings.IndexByte("+./;?&", expr[0]) >= 0 {
		op, expr = expr[0], expr[1:]
	} else if expr != "" && strings.IndexByte("#=,!@|", expr[0]) >= 0 {
		// '#' would put a variable in the fragment; the others are reserved.
		return tmplPart{}, fmt.Errorf("operator %q not allowed", expr[0])
	}
	p := tmplPart{op: op}
	for v := range strings.SplitSeq(expr, ",") {
		if v != "targethost" && v != "targetpath" {
			return tmplPart{}, fmt.Errorf("variable %q not allowed (only targethost and targetpath)", v)
		}
		p.vars = append(p.vars, v)
	}
	return p, nil
}

// checkTemplate checks a split template: each variable once, the scheme
// and authority literal, and an expansion that is an https URL whose
// query-form variables come back as query parameters.
func checkTemplate(s string, parts []tmplPart) error {
	if err := checkVarsOnce(parts); err != nil {
		return err
	}
	if err := checkAuthority(s, parts); err != nil {
		return err
	}
	t := &ProxyTemplate{raw: s, parts: parts}
	u, err := url.Parse(t.Expand(probeHost, probePath))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return errors.New("expansion is not an https URL")
	}
	if err := checkOwnParams(u); err != nil {
		return err
	}
	return checkQueryVars(u, parts)
}

func checkVarsOnce(parts []tmplPart) error {
	seen := map[string]int{}
	for _, p := range parts {
		for _, v := range p.vars {
			seen[v]++
		}
	}
	for _, v := range []string{"targethost", "targetpath"} {
		if seen[v] != 1 {
			return fmt.Errorf("variable %s appears %d times, want once", v, seen[v])
		}
	}
	return nil
}

// checkAuthority requires the literal prefix to hold the scheme and the
// whole authority, so that no variable can choose the host the client
// connects to, and refuses userinfo and fragments.
func checkAuthority(s string, parts []tmplPart) error {
	prefix := ""
	if len(parts) > 0 && parts[0].op == 0 {
		prefix = parts[0].literal
	}
	const scheme = "https://"
	if !strings.HasPrefix(strings.ToLower(prefix), scheme) {
		return errors.New("not an https template")
	}
	auth := prefix[len(scheme):]
	end := strings.IndexAny(auth, "/?")
	switch {
	case end <= 0:
		return errors.New("variable in the authority")
	case strings.IndexByte(auth[:end], '@') >= 0:
		return errors.New("userinfo not allowed")
	case strings.IndexByte(s, '#') >= 0:
		return errors.New("fragment not allowed")
	}
	return nil
}

// checkQueryVars requires a query-form variable to come back as a query
// parameter: a literal '?' before {?…} would make it "?targethost", which
// no proxy reads.
func checkQueryVars(u *url.URL, parts []tmplPart) error {
	q := u.Query()
	for _, p := range parts {
		if p.op != '?' && p.op != '&' {
			continue
		}
		for _, v := range p.vars {
			want := probeHost
			if v == "targetpath" {
				want = probePath
			}
			if got := q[v]; len(got) != 1 || got[0] != want {
				return fmt.Errorf("%s does not expand to a query parameter", v)
			}
		}
	}
	return nil
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
// query and simple forms, RFC 9230 §4.1 and RFC 6570 §3.2.2).
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

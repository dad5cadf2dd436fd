package odoh

import (
	"strconv"
	"strings"
	"time"
)

// CacheControlMaxAge is the Cache-Control value that lets a response be
// reused for d: max-age in whole seconds, rounded down, and 0 for a d
// that is negative (RFC 9111 §5.2.2.1). Targets send it with their configs
// and DoH answers, proxies with the configs they relay (counting down).
func CacheControlMaxAge(d time.Duration) string {
	return "max-age=" + strconv.FormatInt(max(0, int64(d/time.Second)), 10)
}

// maxDeltaSeconds is what a delta-seconds value too large to represent
// counts as (RFC 9111 §1.2.2).
const maxDeltaSeconds = 1 << 31

// MaxAge is the one Cache-Control rule of this project: how long a response
// (a target's configs, above all) may be reused, as RFC 9111 computes its
// freshness lifetime from the Cache-Control field values. shared is true for
// a shared cache (a proxy caching configs for all its clients) and false for
// a private one (a client).
//
// ok is false when the header says nothing about freshness: the caller's
// default lifetime applies. Otherwise age is the lifetime, and zero means
// the response is stale at once:
//
//   - max-age=N gives N seconds (§5.2.2.1); for a shared cache s-maxage=N
//     overrides it (§5.2.2.10). The argument may be a token or a quoted
//     string (§5.2: recipients accept both forms); directive names are
//     case-insensitive. Of repeated directives the first counts (§4.2.1).
//     A value too large to represent counts as 2^31 seconds (§1.2.2).
//   - An invalid argument (empty, signed, fractional, not digits) makes the
//     response stale (§4.2.1 encourages this), as does no-store
//     (§5.2.2.5), an unqualified no-cache (§5.2.2.4) and, for a shared
//     cache, an unqualified private (§5.2.2.7). They win over any max-age:
//     the most restrictive directive is honoured (§4.2.1). The qualified
//     forms (no-cache="field") only concern header fields, not lifetime.
//   - Unknown directives are ignored; Expires and Age are not consulted
//     (targets send max-age, and a proxy's relayed max-age already counts
//     down).
//
// The roles clamp the result to a minimum lifetime of their own, so that a
// target cannot make them fetch once per query: that floor is a deliberate,
// documented departure from no-store, whose response they keep (and use)
// for the floor's length.
//
// CacheControlMaxAge writes what MaxAge reads.
func MaxAge(cacheControl []string, shared bool) (age time.Duration, ok bool) {
	var maxAge, sMaxAge int64 = -1, -1
	stale := false
	for _, field := range cacheControl {
		for rest := field; rest != ""; {
			var name, arg string
			var hasArg, valid bool
			name, arg, hasArg, valid, rest = nextDirective(rest)
			switch strings.ToLower(name) {
			case "max-age":
				if maxAge < 0 {
					maxAge = deltaSeconds(arg, hasArg && valid)
					stale = stale || maxAge < 0
				}
			case "s-maxage":
				if shared && sMaxAge < 0 {
					sMaxAge = deltaSeconds(arg, hasArg && valid)
					stale = stale || sMaxAge < 0
				}
			case "no-store":
				stale = true
			case "no-cache":
				stale = stale || !hasArg
			case "private":
				stale = stale || shared && !hasArg
			}
		}
	}
	switch {
	case stale:
		return 0, true
	case sMaxAge >= 0:
		return time.Duration(sMaxAge) * time.Second, true
	case maxAge >= 0:
		return time.Duration(maxAge) * time.Second, true
	}
	return 0, false
}

// deltaSeconds parses a delta-seconds argument (1*DIGIT, RFC 9111 §1.2.2),
// or returns -1 for an invalid one.
func deltaSeconds(s string, ok bool) int64 {
	if !ok || s == "" {
		return -1
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		if n < maxDeltaSeconds {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDeltaSeconds)
}

// nextDirective splits the first cache-directive (token [ "=" ( token /
// quoted-string ) ], RFC 9111 §5.2) off a comma-separated list, commas
// inside a quoted string included. valid is false for an argument that is
// neither a token nor a well-formed quoted string (whose value arg is then
// unescaped).
func nextDirective(s string) (name, arg string, hasArg, valid bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && s[i] != '=' && s[i] != ',' {
		i++
	}
	name = strings.TrimRight(s[:i], " \t")
	if i == len(s) || s[i] == ',' {
		return name, "", false, true, s[i:]
	}
	s = s[i+1:] // after '='
	if s != "" && s[0] == '"' {
		var b strings.Builder
		for j := 1; j < len(s); j++ {
			switch c := s[j]; c {
			case '\\':
				if j+1 == len(s) {
					return name, "", true, false, ""
				}
				j++
				b.WriteByte(s[j])
			case '"':
				end := j + 1
				for end < len(s) && (s[end] == ' ' || s[end] == '\t') {
					end++
				}
				if end < len(s) && s[end] != ',' {
					// Junk after the closing quote: skip to the next comma.
					k := strings.IndexByte(s[end:], ',')
					if k < 0 {
						return name, "", true, false, ""
					}
					return name, "", true, false, s[end+k:]
				}
				return name, b.String(), true, true, s[end:]
			default:
				b.WriteByte(c)
			}
		}
		return name, "", true, false, "" // unterminated
	}
	j := strings.IndexByte(s, ',')
	if j < 0 {
		j = len(s)
	}
	arg = strings.TrimRight(s[:j], " \t")
	return name, arg, true, isToken(arg), s[j:]
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

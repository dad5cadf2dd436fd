// Package vocabtest holds the test tables of the ODoH-over-HTTP vocabulary
// (package odoh) that more than one role's tests run: the odoh package
// checks the rule itself against a table, and the client and the proxy
// check, against the same table, that what they cache is that rule clamped
// to their own documented bounds. A rule written twice drifts; so does a
// table.
package vocabtest

import "time"

// MaxAgeCase is one Cache-Control header and what odoh.MaxAge makes of it
// for a private cache (a client) and a shared one (a proxy).
type MaxAgeCase struct {
	Name string
	// CacheControl are the field lines, in order.
	CacheControl []string
	// Private and Shared are the lifetimes; a false OK means the header
	// gives none (the caller's default applies).
	Private, Shared Lifetime
}

// Lifetime is an expected odoh.MaxAge result.
type Lifetime struct {
	Age time.Duration
	OK  bool
}

func secs(n int64) Lifetime { return Lifetime{time.Duration(n) * time.Second, true} }

var (
	none  = Lifetime{}
	stale = Lifetime{0, true}
)

// MaxAgeCases is the table of the Cache-Control rule (RFC 9111 §4.2.1,
// §5.2), as odoh.MaxAge documents it.
var MaxAgeCases = []MaxAgeCase{
	{"absent", nil, none, none},
	{"empty", []string{""}, none, none},
	{"no freshness directive", []string{"public, must-revalidate"}, none, none},
	{"max-age", []string{"max-age=60"}, secs(60), secs(60)},
	{"case-insensitive name", []string{"Max-Age=60"}, secs(60), secs(60)},
	{"quoted argument", []string{`max-age="60"`}, secs(60), secs(60)},
	{"among others", []string{"public, max-age=300, must-revalidate"}, secs(300), secs(300)},
	{"second field line", []string{"public", "max-age=300"}, secs(300), secs(300)},
	{"white space", []string{"  max-age=45 ,public "}, secs(45), secs(45)},
	{"zero", []string{"max-age=0"}, stale, stale},
	{"first of repeated", []string{"max-age=60, max-age=3600"}, secs(60), secs(60)},
	{"overflow counts as 2^31", []string{"max-age=99999999999999999999"}, secs(1 << 31), secs(1 << 31)},
	{"comma inside a quoted string", []string{`ext="a,max-age=1", max-age=90`}, secs(90), secs(90)},
	{"no-store", []string{"no-store"}, stale, stale},
	{"no-store wins over max-age", []string{"max-age=600, no-store"}, stale, stale},
	{"no-store on another line", []string{"max-age=600", "No-Store"}, stale, stale},
	{"no-cache", []string{"no-cache"}, stale, stale},
	{"qualified no-cache", []string{`no-cache="Set-Cookie", max-age=120`}, secs(120), secs(120)},
	{"private", []string{"private, max-age=120"}, secs(120), stale},
	{"qualified private", []string{`private="X-Foo", max-age=120`}, secs(120), secs(120)},
	{"s-maxage for shared caches", []string{"max-age=60, s-maxage=600"}, secs(60), secs(600)},
	{"not a number", []string{"max-age=abc"}, stale, stale},
	{"negative", []string{"max-age=-5"}, stale, stale},
	{"signed", []string{"max-age=+5"}, stale, stale},
	{"fraction", []string{"max-age=1.5"}, stale, stale},
	{"empty argument", []string{"max-age="}, stale, stale},
	{"no argument", []string{"max-age"}, stale, stale},
	{"unterminated quote", []string{`max-age="60`}, stale, stale},
	{"junk after the quote", []string{`max-age="60"x, public`}, stale, stale},
	{"space around =", []string{"max-age = 60"}, stale, stale},
}

// Clamp is how a role turns an odoh.MaxAge result into the lifetime it
// caches for: def without one, else the age bounded by [lo, hi].
func Clamp(l Lifetime, def, lo, hi time.Duration) time.Duration {
	if !l.OK {
		return def
	}
	return min(max(l.Age, lo), hi)
}

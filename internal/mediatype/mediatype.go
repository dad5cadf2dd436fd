// Package mediatype is the one comparison of media types that the
// protocol packages use for the fixed, parameterless types of ODoH and
// OHTTP (RFC 9230 §12.1, RFC 9458 §9).
package mediatype

import "strings"

// Is reports whether a Content-Type (or Accept entry) value v names the
// media type want: compared without regard to case (RFC 9110 §8.3.1),
// parameters and surrounding white space ignored, since these media types
// define no parameters.
func Is(v, want string) bool {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.EqualFold(strings.TrimSpace(v), want)
}

// Single reports whether values, the field values of a Content-Type
// header, are exactly one value naming want (by Is): a repeated or missing
// header does not match.
func Single(values []string, want string) bool {
	return len(values) == 1 && (values[0] == want || Is(values[0], want))
}

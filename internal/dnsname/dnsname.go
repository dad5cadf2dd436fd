// Package dnsname holds the comparison rule of DNS names that every role
// uses: names compare case-insensitively in ASCII only (RFC 4343 §3), so
// that "A" and "a" are one name while bytes outside A–Z are compared as
// they are (a name's bytes are not text in any character set).
package dnsname

// Lower returns name with ASCII letters folded to lower case, and name
// itself (no allocation) when it has no upper-case letter.
func Lower(name string) string {
	i := 0
	for i < len(name) && (name[i] < 'A' || name[i] > 'Z') {
		i++
	}
	if i == len(name) {
		return name
	}
	b := []byte(name)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// Equal reports whether a and b are the same name, ignoring ASCII case.
func Equal(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

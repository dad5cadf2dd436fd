package target

// DNS names compare case-insensitively in ASCII only (RFC 4343 §3). The
// strings package folds Unicode and turns bytes that are not UTF-8 into
// U+FFFD, which changes a name's length and merges distinct names.

// lowerName folds the ASCII letters of name, leaving every other byte as
// it is. It does not allocate when name has no upper-case letter.
func lowerName(name string) string {
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

// equalNames reports whether a and b are the same name, ASCII case aside.
func equalNames(a, b string) bool {
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

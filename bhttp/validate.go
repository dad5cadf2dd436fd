package bhttp

// The rules of RFC 9292 §3.4 and §3.6, which defer to HTTP/2's (RFC 9113
// §8.2.1, §8.3.1), shared by the parser and the encoder.

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// isVisible reports whether s is visible ASCII only (no space, control or
// non-ASCII byte), as a scheme, authority or path must be.
func isVisible(s string) bool {
	for i := range len(s) {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isScheme reports whether s is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
// (RFC 3986 §3.1).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		alpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if i == 0 && !alpha {
			return false
		}
		if !alpha && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// checkControl validates request control data.
func checkControl(method, scheme, authority, path string) error {
	if !isToken(method) {
		return malformed("method %q is not a token", clip(method))
	}
	if method == "CONNECT" {
		return malformed("CONNECT cannot be carried in a binary message")
	}
	if !isScheme(scheme) {
		return malformed("scheme %q is not a URI scheme", clip(scheme))
	}
	if !isVisible(authority) {
		return malformed("authority %q has a space, control or non-ASCII byte", clip(authority))
	}
	if (equalFold(scheme, "http") || equalFold(scheme, "https")) && containsByte(authority, '@') {
		return malformed("authority %q has userinfo, which http and https forbid", clip(authority))
	}
	switch {
	case path == "":
		return malformed("path is empty")
	case !isVisible(path):
		return malformed("path %q has a space, control or non-ASCII byte", clip(path))
	case path == "*":
		if method != "OPTIONS" {
			return malformed("path \"*\" with method %s, not OPTIONS", method)
		}
	case path[0] != '/':
		return malformed("path %q does not start with /", clip(path))
	}
	return nil
}

func containsByte(s string, c byte) bool {
	for i := range len(s) {
		if s[i] == c {
			return true
		}
	}
	return false
}

// checkField validates one field line (RFC 9292 §3.6, RFC 9113 §8.2.1).
// Upper-case names are tokens too (RFC 9110 §5.1): HTTP/2 forbids them,
// but Firefox sends the names its channel was given ("Content-Type"), so
// they are accepted and folded to lower case.
func checkField(name, value string) error {
	if name == "" {
		return malformed("field name is empty")
	}
	if name[0] == ':' {
		return malformed("pseudo-field %q", clip(name))
	}
	if !isToken(name) {
		return malformed("field name %q is not a token", clip(name))
	}
	for i := range len(value) {
		switch value[i] {
		case 0, '\r', '\n':
			return malformed("field %s has a NUL, CR or LF in its value", clip(name))
		}
	}
	if n := len(value); n > 0 && (isSpace(value[0]) || isSpace(value[n-1])) {
		return malformed("field %s value starts or ends with white space", clip(name))
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func checkFields(f Fields) error {
	for _, x := range f {
		if err := checkField(x.Name, x.Value); err != nil {
			return err
		}
	}
	return nil
}

// clip shortens what an error quotes, so that an attacker's megabyte does
// not end up in a log line.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

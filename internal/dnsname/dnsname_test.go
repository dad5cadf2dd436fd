package dnsname

import "testing"

func TestLowerAndEqual(t *testing.T) {
	for _, tc := range []struct{ in, lower string }{
		{"www.Example.COM.", "www.example.com."},
		{"already.lower.", "already.lower."},
		{"\xc3\x89cole.test.", "\xc3\x89cole.test."}, // É is not ASCII: kept
		{"A\\.B.test.", "a\\.b.test."},
	} {
		if got := Lower(tc.in); got != tc.lower {
			t.Errorf("Lower(%q) = %q, want %q", tc.in, got, tc.lower)
		}
		if !Equal(tc.in, tc.lower) || Equal(tc.in, tc.lower+"x") {
			t.Errorf("Equal(%q, %q) wrong", tc.in, tc.lower)
		}
	}
	if Equal("\xc3\x89.", "\xc3\xa9.") {
		t.Error("non-ASCII bytes folded")
	}
}

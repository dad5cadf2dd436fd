package mediatype

import "testing"

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"message/ohttp-req", true},
		{"Message/OHTTP-Req", true},
		{" message/ohttp-req ; charset=x", true},
		{"message/ohttp-res", false},
		{"message/ohttp-req+x", false},
		{"", false},
	} {
		if got := Is(tc.v, "message/ohttp-req"); got != tc.want {
			t.Errorf("Is(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

package odoh

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseProxyStatus(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		want        []ProxyStatus
	}{
		{"empty", "", nil},
		{"name only", "odoh-proxy", []ProxyStatus{{Name: "odoh-proxy"}}},
		{"string name", `"my proxy"`, []ProxyStatus{{Name: "my proxy"}}},
		{"received-status", "odoh-proxy; received-status=401", []ProxyStatus{{Name: "odoh-proxy", ReceivedStatus: 401}}},
		{"error and details", `odoh-proxy; error=dns_timeout; details="lookup \"x\" timed out"`,
			[]ProxyStatus{{Name: "odoh-proxy", Error: ProxyDNSTimeout, Details: `lookup "x" timed out`}}},
		{"two intermediaries", "cdn;received-status=502, odoh-proxy; error=connection_refused",
			[]ProxyStatus{{Name: "cdn", ReceivedStatus: 502}, {Name: "odoh-proxy", Error: ProxyConnectionRefused}}},
		{"other parameters skipped", `p; next-hop="t.example"; next-protocol=:aDI=:; x=?1; y=1.5; error=tls_alert_received`,
			[]ProxyStatus{{Name: "p", Error: "tls_alert_received"}}},
		{"wrong parameter types ignored", `p; error="dns_error"; received-status=abc; details=tok`,
			[]ProxyStatus{{Name: "p"}}},
		{"later parameter wins", "p; error=dns_error; error=dns_timeout", []ProxyStatus{{Name: "p", Error: ProxyDNSTimeout}}},
		{"surrounding spaces", "  p ,\tq  ", []ProxyStatus{{Name: "p"}, {Name: "q"}}},
		{"negative status ignored", "p; received-status=-1", []ProxyStatus{{Name: "p"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProxyStatus(tc.field)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseProxyStatus(%q) = %+v, %v; want %+v", tc.field, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{
		"p,", ",p", "p q", "p;", "p; Error=dns_error", "p; error=", `"unterminated`, `"bad \n escape"`,
		"(a b)", "p; x=:not base64!:", "p; x=?2", "1234567890123456", "p; x=1.2345", "p;;error=x", `"a"b`,
	} {
		if got, err := ParseProxyStatus(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseProxyStatus(%q) = %+v, %v; want ErrMalformed", bad, got, err)
		}
	}
}

func TestProxyStatusString(t *testing.T) {
	for _, tc := range []struct {
		ps   ProxyStatus
		want string
	}{
		{ProxyStatus{Name: "odoh-proxy", ReceivedStatus: 200}, "odoh-proxy; received-status=200"},
		{ProxyStatus{Name: "odoh-proxy", Error: ProxyHTTPProtocolError, ReceivedStatus: 200, Details: "not odoh"},
			`odoh-proxy; error=http_protocol_error; received-status=200; details="not odoh"`},
		{ProxyStatus{Name: "odoh-proxy", Error: ProxyHTTPRequestError, Details: "a \"q\" \\ \x00é"},
			`odoh-proxy; error=http_request_error; details="a \"q\" \\ ???"`},
		{ProxyStatus{Name: "not a token"}, `"not a token"`},
	} {
		if got := tc.ps.String(); got != tc.want {
			t.Errorf("%+v.String() = %s, want %s", tc.ps, got, tc.want)
		}
	}
}

func TestProxyErrorNextHop(t *testing.T) {
	for _, e := range []ProxyError{ProxyDNSTimeout, ProxyDNSError, ProxyDestinationUnavailable,
		ProxyDestinationIPProhibited, ProxyConnectionRefused, ProxyConnectionTerminated, ProxyConnectionTimeout,
		ProxyTLSProtocolError, ProxyTLSCertificateError, ProxyHTTPResponseBodySize, ProxyHTTPResponseTimeout,
		ProxyHTTPProtocolError, "connection_read_timeout", "http_response_incomplete"} {
		if !e.NextHop() {
			t.Errorf("%s: NextHop false", e)
		}
	}
	for _, e := range []ProxyError{ProxyHTTPRequestError, ProxyHTTPRequestDenied, "proxy_internal_error",
		"connection_limit_reached", "proxy_loop_detected", "", "no_such_error"} {
		if e.NextHop() {
			t.Errorf("%q: NextHop true", e)
		}
	}
	if !(ProxyStatus{Name: "p", ReceivedStatus: 401}).NextHopFault() {
		t.Error("a relayed status is not a next-hop fault")
	}
	if (ProxyStatus{Name: "p", Error: ProxyHTTPRequestDenied}).NextHopFault() {
		t.Error("a denied request is a next-hop fault")
	}
}

func FuzzParseProxyStatus(f *testing.F) {
	for _, s := range []string{
		"odoh-proxy; received-status=200", `odoh-proxy; error=dns_timeout; details="x \"y\""`,
		"a, b;error=tls_protocol_error;received-status=502", `"n"; next-hop=x; y=:aGk=:; z=?0; w=-1.5`, "p,", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		ms, err := ParseProxyStatus(field)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ms != nil {
				t.Fatalf("error %v does not wrap ErrMalformed, or members %v returned with it", err, ms)
			}
			return
		}
		// What parses renders back to the same members.
		parts := make([]string, len(ms))
		for i, m := range ms {
			if m.ReceivedStatus < 0 {
				t.Fatalf("received-status %d", m.ReceivedStatus)
			}
			parts[i] = m.String()
		}
		again, err := ParseProxyStatus(strings.Join(parts, ", "))
		if err != nil || !reflect.DeepEqual(again, ms) {
			t.Fatalf("%q: parsed %+v, rendered %q, parsed again %+v, %v", field, ms, parts, again, err)
		}
	})
}

func FuzzMaxAge(f *testing.F) {
	for _, s := range []string{"max-age=60", `max-age="60", no-store`, "s-maxage=5, private", `x="a,b", max-age=1`, "max-age=99999999999999999999"} {
		f.Add(s, "", false)
	}
	f.Fuzz(func(t *testing.T, a, b string, shared bool) {
		age, ok := MaxAge([]string{a, b}, shared)
		if age < 0 || age > maxDeltaSeconds*time.Second || !ok && age != 0 {
			t.Fatalf("MaxAge(%q, %q, %v) = %v, %v", a, b, shared, age, ok)
		}
		// no-store anywhere makes any response stale at once.
		if age, ok := MaxAge([]string{a, "no-store", b}, shared); age != 0 || !ok {
			t.Fatalf("with no-store: %v, %v", age, ok)
		}
	})
}

func TestIsProxyName(t *testing.T) {
	for name, want := range map[string]bool{
		"odoh-proxy": true, "*x/y:z": true, "A.b_c~d": true,
		"odoh proxy": false, "": false, "1x": false, "-x": false, "a,b": false, `a"b`: false, "é": false,
	} {
		if got := IsProxyName(name); got != want {
			t.Errorf("IsProxyName(%q) = %v", name, got)
		}
	}
}

// FuzzProxyStatusString: a member rendered from any name and details text
// is one header line of visible ASCII that parses back to the member, with
// what an sf-string cannot carry in the details replaced by '?'.
func FuzzProxyStatusString(f *testing.F) {
	f.Add("odoh-proxy", "target not allowed", 0)
	f.Add("odoh-proxy", "a\"b\\c\nd\xff", 502)
	f.Add("*x/y:z", "", -1)
	f.Add("x", "", math.MaxInt)
	f.Add("odoh proxy", "x", 100)
	f.Fuzz(func(t *testing.T, name, details string, received int) {
		ps := ProxyStatus{Name: name, Error: ProxyHTTPRequestDenied, ReceivedStatus: received, Details: details}
		v := ps.String()
		for i := 0; i < len(v); i++ {
			if v[i] < ' ' || v[i] > '~' {
				t.Fatalf("header value %q holds byte %#x", v, v[i])
			}
		}
		clean := func(s string) string {
			b := []byte(s)
			for i, c := range b {
				if c < ' ' || c > '~' {
					b[i] = '?'
				}
			}
			return string(b)
		}
		want := ProxyStatus{Name: clean(name), Error: ps.Error, ReceivedStatus: received, Details: clean(details)}
		if received <= 0 || int64(received) > maxSFInteger {
			want.ReceivedStatus = 0
		}
		got, err := ParseProxyStatus(v)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Fatalf("%q parses to %+v, %v; want %+v", v, got, err, want)
		}
	})
}

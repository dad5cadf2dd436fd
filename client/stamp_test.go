package client_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/odohd/odoh/client"
)

func TestStampPublicExamples(t *testing.T) {
	testCases := []struct {
		name, stamp string
		want        client.Stamp
	}{
		{"cloudflare target", "sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk",
			client.Stamp{Proto: client.StampODoHTarget, Props: 7, Host: "odoh.cloudflare-dns.com", Path: "/dns-query"}},
		{"edgecompute relay", "sdns://hQcAAAAAAAAAAAAab2RvaC1yZWxheS5lZGdlY29tcHV0ZS5hcHABLw",
			client.Stamp{Proto: client.StampODoHRelay, Props: 7, Host: "odoh-relay.edgecompute.app", Path: "/"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := client.ParseStamp(tc.stamp)
			if err != nil {
				t.Fatal(err)
			}
			if st.Proto != tc.want.Proto || st.Props != tc.want.Props || st.Host != tc.want.Host ||
				st.Path != tc.want.Path || st.Addr != "" || len(st.Hashes) != 0 || len(st.Bootstrap) != 0 {
				t.Fatalf("parsed %+v, want %+v", st, tc.want)
			}
			if got := st.String(); got != tc.stamp {
				t.Errorf("round trip:\n got %s\nwant %s", got, tc.stamp)
			}
			if got := tc.want.String(); got != tc.stamp {
				t.Errorf("format:\n got %s\nwant %s", got, tc.stamp)
			}
		})
	}
}

func TestStampRelayFull(t *testing.T) {
	h1 := bytes.Repeat([]byte{0xaa}, 32)
	h2, _ := hex.DecodeString(strings.Repeat("bb", 32))
	st := client.Stamp{Proto: client.StampODoHRelay, Props: client.StampNoLogs | client.StampNoFilter,
		Addr: "192.0.2.7:8443", Hashes: [][]byte{h1, h2}, Host: "relay.example:8443", Path: "/proxy",
		Bootstrap: []string{"9.9.9.9", "1.1.1.1"}}
	got, err := client.ParseStamp(st.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != st.Addr || len(got.Hashes) != 2 || !bytes.Equal(got.Hashes[1], h2) || got.Host != st.Host ||
		got.Path != st.Path || strings.Join(got.Bootstrap, ",") != "9.9.9.9,1.1.1.1" || got.Props != 6 {
		t.Fatalf("round trip %+v", got)
	}
}

func TestStampRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"https://odoh.example/dns-query",
		"sdns://",
		"sdns://AgcAAAAAAAAAAAAQZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk",          // DoH, not ODoH
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29t",                 // no path
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnkA", // trailing byte
		"sdns://BQcAAAA",
		"sdns://!!!",
	} {
		if _, err := client.ParseStamp(s); err == nil {
			t.Errorf("ParseStamp(%q) accepted", s)
		}
	}
}

func TestStampAsTarget(t *testing.T) {
	s := newStack(t, 1)
	st := client.Stamp{Proto: client.StampODoHTarget, Host: s.targetHost(), Path: "/dns-query"}
	o := s.options(false)
	o.Targets = []string{st.String()}
	c := s.client(t, o)
	if _, err := c.Exchange(t.Context(), query("stamp.example.", 1)); err != nil {
		t.Fatal(err)
	}
}

// A field too long for the format is refused rather than encoded into a
// stamp that decodes to something else.
func TestStampEncodeRefusesOversizeFields(t *testing.T) {
	long := strings.Repeat("a", 250) + ".example:8443" // 263 bytes
	for _, st := range []client.Stamp{
		{Proto: client.StampODoHTarget, Host: long, Path: "/dns-query"},
		{Proto: client.StampODoHRelay, Host: "r.example", Path: "/" + strings.Repeat("p", 255)},
		{Proto: client.StampODoHRelay, Host: "r.example", Path: "/", Hashes: [][]byte{make([]byte, 128)}},
		{Proto: client.StampODoHTarget, Host: "", Path: "/dns-query"},
	} {
		if s, err := st.Encode(); err == nil || st.String() != "" {
			t.Errorf("%+v encoded to %q", st, s)
		}
	}
	ok := client.Stamp{Proto: client.StampODoHTarget, Host: strings.Repeat("a", 255), Path: "/"}
	if s, err := ok.Encode(); err != nil || s != ok.String() {
		t.Errorf("255-byte host: %q, %v", s, err)
	}
}

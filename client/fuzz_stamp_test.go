package client

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeStamp: DecodeStamp never panics; what it accepts has the
// fields of its protocol and no others; ParseStamp takes exactly its ODoH
// stamps, decoded alike, and refuses the others naming their protocol.
func FuzzDecodeStamp(f *testing.F) {
	for _, s := range []string{
		"sdns://BQcAAAAAAAAAF29kb2guY2xvdWRmbGFyZS1kbnMuY29tCi9kbnMtcXVlcnk",
		"sdns://hQcAAAAAAAAAAAAab2RvaC1yZWxheS5lZGdlY29tcHV0ZS5hcHABLw",
		"sdns://AgcAAAAAAAAAAAAPZG5zLmV4YW1wbGUuY29tCi9kbnMtcXVlcnk",
		"sdns://AQEAAAAAAAAADjE5Mi4wLjIuNTM6NDQzIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fFzIuZG5zY3J5cHQtY2VydC5leGFtcGxl",
		"sdns://gQ4xOTIuMC4yLjU0OjQ0Mw",
		"sdns://AAcAAAAAAAAABzEuMS4xLjE",
		"sdns://AwcAAAAAAAAAAAAPZG5zLmV4YW1wbGUuY29t",
		"sdns://garbage", "sdns://", "sdns://BQ", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := DecodeStamp(s)
		odoh, perr := ParseStamp(s)
		if err != nil {
			if perr == nil {
				t.Fatalf("%q: ParseStamp took what DecodeStamp refused", s)
			}
			return
		}
		fields, known := stampFields[st.Proto]
		if !known {
			t.Fatalf("%q decoded with unknown protocol %v", s, st.Proto)
		}
		has := map[string]bool{}
		for _, f := range fields {
			has[strings.TrimSuffix(f, "?")] = true
		}
		if !has["host"] && st.Host != "" || !has["path"] && st.Path != "" || !has["pk"] && st.PublicKey != nil ||
			!has["provider"] && st.ProviderName != "" || !has["hashes"] && st.Hashes != nil ||
			!has["bootstrap"] && st.Bootstrap != nil || !has["addr"] && st.Addr != "" ||
			st.Proto == StampDNSCryptRelay && st.Props != 0 {
			t.Fatalf("%q: %v stamp with fields it has not: %+v", s, st.Proto, st)
		}
		if has["host"] && st.Host == "" || has["path"] && !strings.HasPrefix(st.Path, "/") {
			t.Fatalf("%q: %v stamp without its host or path: %+v", s, st.Proto, st)
		}
		isODoH := st.Proto == StampODoHTarget || st.Proto == StampODoHRelay
		switch {
		case isODoH && (perr != nil || !reflect.DeepEqual(odoh, st)):
			t.Fatalf("%q: ODoH stamp decoded as %+v, parsed as %+v, %v", s, st, odoh, perr)
		case !isODoH && (perr == nil || !strings.Contains(perr.Error(), st.Proto.String()+" stamp")):
			t.Fatalf("%q: %v stamp parsed: %v", s, st.Proto, perr)
		}
	})
}

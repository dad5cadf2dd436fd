package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
)

// v2 builds a version 2 header: command, family<<4|transport, the
// address block and TLV bytes.
func v2(cmd, famProto byte, addrs, tlvs []byte) []byte {
	b := append([]byte{}, v2Sig...)
	b = append(b, 0x20|cmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlvs)))
	b = append(b, addrs...)
	return append(b, tlvs...)
}

func inet(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	b := append(s.AsSlice(), d.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name  string
		in    []byte
		want  Header
		n     int
		error error
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nrest"),
			Header{Version: 1, Source: ap("192.0.2.1:56324"), Destination: ap("198.51.100.2:443")}, 45, nil},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
			Header{Version: 1, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}, 44, nil},
		{"v1 unknown", []byte("PROXY UNKNOWN ffff::1 whatever\r\nX"), Header{Version: 1, Local: true}, 32, nil},
		{"v1 bare unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}, 15, nil},
		{"v2 tcp4", append(v2(cmdProxy, 0x11, inet("192.0.2.1", "198.51.100.2", 1000, 443), nil), 0x16),
			Header{Version: 2, Source: ap("192.0.2.1:1000"), Destination: ap("198.51.100.2:443")}, 28, nil},
		{"v2 tcp6 with tlvs", v2(cmdProxy, 0x21, inet("2001:db8::1", "2001:db8::2", 7, 8), []byte{0x04, 0x00, 0x01, 0x00}),
			Header{Version: 2, Source: ap("[2001:db8::1]:7"), Destination: ap("[2001:db8::2]:8")}, 16 + 36 + 4, nil},
		{"v2 local", v2(cmdLocal, 0x00, nil, nil), Header{Version: 2, Local: true}, 16, nil},
		{"v2 local ignores addresses", v2(cmdLocal, 0x11, inet("192.0.2.1", "192.0.2.2", 1, 2), nil), Header{Version: 2, Local: true}, 28, nil},
		{"v2 unspec", v2(cmdProxy, 0x00, nil, nil), Header{Version: 2, Local: true}, 16, nil},
		{"v2 unix", v2(cmdProxy, 0x31, make([]byte, 216), nil), Header{Version: 2, Local: true}, 232, nil},

		{"tls", []byte{0x16, 0x03, 0x01, 0x00, 0x10}, Header{}, 0, ErrNoHeader},
		{"empty", nil, Header{}, 0, ErrIncomplete},
		{"v1 prefix", []byte("PROX"), Header{}, 0, ErrIncomplete},
		{"v1 no crlf yet", []byte("PROXY TCP4 192.0.2.1 "), Header{}, 0, ErrIncomplete},
		{"v2 prefix", v2Sig[:5], Header{}, 0, ErrIncomplete},
		{"v2 short body", v2(cmdProxy, 0x11, inet("192.0.2.1", "192.0.2.2", 1, 2), nil)[:20], Header{}, 0, ErrIncomplete},

		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n"), Header{}, 0, ErrMalformed},
		{"v1 lf only", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n"), Header{}, 0, ErrMalformed},
		{"v1 udp", []byte("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n"), Header{}, 0, ErrMalformed},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n"), Header{}, 0, ErrMalformed},
		{"v1 port too big", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n"), Header{}, 0, ErrMalformed},
		{"v1 leading zero", []byte("PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n"), Header{}, 0, ErrMalformed},
		{"v1 double space", []byte("PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n"), Header{}, 0, ErrMalformed},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n"), Header{}, 0, ErrMalformed},
		{"v2 version 1", append(append([]byte{}, v2Sig...), 0x11, 0x11, 0, 0), Header{}, 0, ErrMalformed},
		{"v2 command 2", v2(0x2, 0x11, inet("192.0.2.1", "192.0.2.2", 1, 2), nil), Header{}, 0, ErrMalformed},
		{"v2 dgram", v2(cmdProxy, 0x12, inet("192.0.2.1", "192.0.2.2", 1, 2), nil), Header{}, 0, ErrMalformed},
		{"v2 short inet", v2(cmdProxy, 0x11, make([]byte, 11), nil), Header{}, 0, ErrMalformed},
		{"v2 short inet6", v2(cmdProxy, 0x21, make([]byte, 35), nil), Header{}, 0, ErrMalformed},
		{"v2 family 4", v2(cmdProxy, 0x41, nil, nil), Header{}, 0, ErrMalformed},
		{"v2 inet unspecified transport", v2(cmdProxy, 0x10, inet("192.0.2.1", "192.0.2.2", 1, 2), nil), Header{}, 0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := Parse(tc.in)
			if !errors.Is(err, tc.error) || (err == nil) != (tc.error == nil) {
				t.Fatalf("error %v, want %v", err, tc.error)
			}
			if h != tc.want || n != tc.n {
				t.Errorf("got %+v, %d; want %+v, %d", h, n, tc.want, tc.n)
			}
		})
	}
}

func TestHasSignature(t *testing.T) {
	if !HasSignature([]byte("PROXY TCP4")) || !HasSignature(v2(cmdLocal, 0, nil, nil)) {
		t.Error("signatures not recognised")
	}
	if HasSignature([]byte("PROX")) || HasSignature([]byte{0x16, 3, 1}) || HasSignature(v2Sig[:11]) {
		t.Error("non-signature recognised")
	}
}

// TestRead: the header is read byte by byte if need be, and what follows
// it is returned, not lost.
func TestRead(t *testing.T) {
	in := append(v2(cmdProxy, 0x11, inet("192.0.2.1", "192.0.2.2", 1, 2), nil), "payload"...)
	h, rest, err := Read(iotest.OneByteReader(bytes.NewReader(in)), 0)
	if err != nil || h.Source != netip.MustParseAddrPort("192.0.2.1:1") || len(rest) != 0 {
		t.Fatalf("one byte at a time: %+v %q %v", h, rest, err)
	}
	h, rest, err = Read(bytes.NewReader(in), 0)
	if err != nil || h.Version != 2 || string(rest) != "payload" {
		t.Fatalf("at once: %+v %q %v", h, rest, err)
	}
	if _, _, err := Read(strings.NewReader("GET / HTTP/1.1\r\n"), 0); !errors.Is(err, ErrNoHeader) {
		t.Errorf("no header: %v", err)
	}
	if _, _, err := Read(strings.NewReader(""), 0); !errors.Is(err, ErrNoHeader) {
		t.Errorf("nothing: %v", err)
	}
	if _, _, err := Read(strings.NewReader("PROXY TCP4 192.0.2.1"), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v", err)
	}
	big := v2(cmdProxy, 0x11, inet("192.0.2.1", "192.0.2.2", 1, 2), make([]byte, 5000))
	if _, _, err := Read(bytes.NewReader(big), 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("over the size bound: %v", err)
	}
}

// FuzzParse: no input panics; a parsed header lies within the input and
// stays parsed whatever follows it; an error is one of the three kinds;
// every proper prefix of a parsed header is incomplete.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(cmdProxy, 0x11, inet("192.0.2.1", "198.51.100.2", 1000, 443), nil))
	f.Add(v2(cmdProxy, 0x21, inet("2001:db8::1", "2001:db8::2", 7, 8), []byte{1, 0, 2, 'h', '2'}))
	f.Add(v2(cmdLocal, 0x00, nil, nil))
	f.Add(v2(cmdProxy, 0x31, make([]byte, 216), nil))
	f.Add([]byte{0x16, 0x03, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrNoHeader) && !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of no kind: %v", err)
			}
			if n != 0 || h != (Header{}) {
				t.Fatalf("error %v with %+v, %d", err, h, n)
			}
			return
		}
		if n <= 0 || n > len(b) || (h.Version != 1 && h.Version != 2) {
			t.Fatalf("n %d of %d, header %+v", n, len(b), h)
		}
		if !h.Local && (!h.Source.Addr().IsValid() || !h.Destination.Addr().IsValid()) {
			t.Fatalf("no addresses in %+v", h)
		}
		h2, n2, err := Parse(append(b[:n:n], 0xAB, 0xCD))
		if err != nil || h2 != h || n2 != n {
			t.Fatalf("with trailing bytes: %+v %d %v", h2, n2, err)
		}
		for i := range n {
			if _, _, err := Parse(b[:i]); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("prefix %d of %d: %v", i, n, err)
			}
		}
	})
}

package tlshello

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// hello returns the first record that crypto/tls sends as a client with
// conf.
func hello(t testing.TB, conf *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		_ = tls.Client(c, conf).Handshake()
		_ = c.Close()
	}()
	var hdr [5]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
	copy(rec, hdr[:])
	if _, err := io.ReadFull(s, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}

// The server name of real ClientHellos: a name, none for an IP address
// (RFC 6066 §3 forbids literals), TLS 1.2 and 1.3 forms; Read takes the
// record and not a byte more.
func TestServerName(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf *tls.Config
		want string
	}{
		{"name", &tls.Config{ServerName: "odoh.example.net"}, "odoh.example.net"},
		{"mixed case", &tls.Config{ServerName: "ODoH.Example.NET"}, "ODoH.Example.NET"},
		{"IPv4", &tls.Config{ServerName: "192.0.2.1"}, ""},
		{"IPv6", &tls.Config{ServerName: "2001:db8::1"}, ""},
		{"TLS 1.2 only", &tls.Config{ServerName: "odoh.example.net", MaxVersion: tls.VersionTLS12}, "odoh.example.net"},
		{"ALPN", &tls.Config{ServerName: "odoh.example.net", NextProtos: []string{"http/1.1"}}, "odoh.example.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := hello(t, tc.conf)
			got, err := ServerName(rec)
			if err != nil || got != tc.want {
				t.Fatalf("ServerName = %q, %v; want %q", got, err, tc.want)
			}
			r := bytes.NewReader(append(bytes.Clone(rec), "next"...))
			rrec, rname, err := Read(r)
			if err != nil || rname != tc.want || !bytes.Equal(rrec, rec) || r.Len() != 4 {
				t.Fatalf("Read = %d bytes, %q, %v, %d left; want the record, %q, 4 left", len(rrec), rname, err, r.Len(), tc.want)
			}
		})
	}
}

// serverNameExt builds a server_name extension holding names.
func serverNameExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, 0)
		list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
		list = append(list, n...)
	}
	ext := binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(len(list)+2))
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(list)))
	return append(ext, list...)
}

// craft builds a ClientHello record with these extensions.
func craft(exts ...[]byte) []byte {
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0)                // session id
	body = append(body, 0, 2, 0x13, 0x01) // one cipher suite
	body = append(body, 1, 0)             // null compression
	all := bytes.Join(exts, nil)
	body = binary.BigEndian.AppendUint16(body, uint16(len(all)))
	body = append(body, all...)
	hs := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	rec := append([]byte{0x16, 3, 1}, byte(len(hs)>>8), byte(len(hs)))
	return append(rec, hs...)
}

// Anything but one whole ClientHello with at most one host name is
// refused: every truncation of a real one, other record and handshake
// types, two names, two extensions, an empty name, trailing bytes.
func TestServerNameRefuses(t *testing.T) {
	rec := hello(t, &tls.Config{ServerName: "odoh.example.net"})
	for n := range len(rec) {
		if _, err := ServerName(rec[:n]); !errors.Is(err, ErrNotHello) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	if got, err := ServerName(craft(serverNameExt("a.example"))); err != nil || got != "a.example" {
		t.Fatalf("crafted hello: %q, %v", got, err)
	}
	appData := bytes.Clone(rec)
	appData[0] = 23
	serverHello := bytes.Clone(rec)
	serverHello[5] = 2
	for name, b := range map[string][]byte{
		"application data":    appData,
		"another handshake":   serverHello,
		"trailing bytes":      append(bytes.Clone(rec), 0),
		"two names":           craft(serverNameExt("a.example", "b.example")),
		"two extensions":      craft(serverNameExt("a.example"), serverNameExt("b.example")),
		"empty name":          craft(serverNameExt("")),
		"no name in the list": craft(serverNameExt()),
	} {
		if got, err := ServerName(b); !errors.Is(err, ErrNotHello) {
			t.Errorf("%s: %q, %v; want ErrNotHello", name, got, err)
		}
	}
	big := append([]byte{0x16, 3, 1, 0x40, 0x01}, make([]byte, 1<<14+1)...)
	if _, _, err := Read(bytes.NewReader(big)); !errors.Is(err, ErrNotHello) {
		t.Errorf("a record over 2^14 bytes: %v", err)
	}
	if _, _, err := Read(bytes.NewReader(rec[:len(rec)-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a record cut short: %v", err)
	}
}

func FuzzServerName(f *testing.F) {
	f.Add(hello(f, &tls.Config{ServerName: "odoh.example.net"}))
	f.Add(hello(f, &tls.Config{ServerName: "192.0.2.1", MaxVersion: tls.VersionTLS12}))
	f.Add(craft(serverNameExt("a.example")))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := ServerName(b)
		if err != nil && !errors.Is(err, ErrNotHello) {
			t.Fatalf("error %v is not ErrNotHello", err)
		}
		if len(b) > MaxRecord {
			return
		}
		rec, rname, rerr := Read(bytes.NewReader(b))
		if err == nil && (rerr != nil || rname != name || !bytes.Equal(rec, b)) {
			t.Fatalf("ServerName = %q, but Read = %q, %v", name, rname, rerr)
		}
	})
}

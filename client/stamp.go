package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// StampProto is the protocol byte of a DNS stamp.
type StampProto byte

// The stamp protocols this package reads and writes.
const (
	StampODoHTarget StampProto = 0x05 // an ODoH target
	StampODoHRelay  StampProto = 0x85 // an ODoH relay (proxy)
)

// Stamp property bits (8-byte little-endian bit set in a stamp).
const (
	StampDNSSEC   uint64 = 1 << 0 // the server validates DNSSEC
	StampNoLogs   uint64 = 1 << 1 // the server keeps no logs
	StampNoFilter uint64 = 1 << 2 // the server does not filter answers
)

const stampPrefix = "sdns://"

// Stamp is an ODoH DNS stamp (sdns://), the format of the DNS-stub ecosystem
// (draft-denis-dns-stamps). A target stamp (0x05) holds Props, Host and Path;
// a relay stamp (0x85) also holds Addr, Hashes and Bootstrap, like a DoH
// stamp.
//
// A pinned target stamp is this package's extension: a target stamp
// followed by the hashes, in the relay stamp's encoding of them,
//
//	0x05 || props || LP(host) || LP(path) || VLP(hash1, …, hashn)
//
// so that a target's certificate pins (see Pin) travel with it. A stamp
// without hashes is the standard form; software that does not know the
// extension refuses a pinned stamp as having trailing bytes, rather than
// dropping the pin.
type Stamp struct {
	Proto StampProto
	Props uint64
	// Addr is the relay's optional IP address, with an optional port
	// (relay only). A Client given the stamp dials it for Host.
	Addr string
	// Hashes are SHA-256 hashes of TBSCertificates in the server's chain
	// (a relay's, or a pinned target's). A Client given the stamp requires
	// one of them in the server's verified chain.
	Hashes [][]byte
	// Host is the hostname, with an optional :port.
	Host string
	// Path is the absolute HTTP path.
	Path string
	// Bootstrap lists resolvers for the relay's name (relay only). A
	// Client does not use them: give Addr, or Config.Resolve.
	Bootstrap []string
}

var errStamp = errors.New("malformed stamp")

// ParseStamp decodes an ODoH target or relay stamp.
func ParseStamp(s string) (Stamp, error) {
	var st Stamp
	if !strings.HasPrefix(s, stampPrefix) {
		return st, fmt.Errorf("stamp %q: no sdns:// prefix: %w", s, errStamp)
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(stampPrefix):])
	if err != nil {
		return st, fmt.Errorf("stamp %q: %w: %w", s, errStamp, err)
	}
	r := stampReader{b: b}
	for _, read := range []func(*stampReader) error{st.readHead, st.readRelayHead, st.readHostPath, st.readTail} {
		if err := read(&r); err != nil {
			return st, fmt.Errorf("stamp %q: %w", s, err)
		}
	}
	if len(r.b) != 0 {
		return st, fmt.Errorf("stamp %q: trailing bytes: %w", s, errStamp)
	}
	return st, nil
}

// readHead reads the protocol and the properties.
func (st *Stamp) readHead(r *stampReader) error {
	proto, ok := r.byte()
	if !ok {
		return fmt.Errorf("empty: %w", errStamp)
	}
	st.Proto = StampProto(proto)
	if st.Proto != StampODoHTarget && st.Proto != StampODoHRelay {
		return fmt.Errorf("protocol 0x%02x is not ODoH", proto)
	}
	props, ok := r.take(8)
	if !ok {
		return fmt.Errorf("short properties: %w", errStamp)
	}
	for i := 7; i >= 0; i-- {
		st.Props = st.Props<<8 | uint64(props[i])
	}
	return nil
}

// readRelayHead reads a relay's address and hashes.
func (st *Stamp) readRelayHead(r *stampReader) error {
	if st.Proto != StampODoHRelay {
		return nil
	}
	addr, ok := r.lp()
	if !ok {
		return fmt.Errorf("bad address: %w", errStamp)
	}
	st.Addr = string(addr)
	if st.Hashes, ok = r.vlp(); !ok {
		return fmt.Errorf("bad hashes: %w", errStamp)
	}
	if len(st.Hashes) == 1 && len(st.Hashes[0]) == 0 {
		st.Hashes = nil
	}
	return nil
}

func (st *Stamp) readHostPath(r *stampReader) error {
	host, ok := r.lp()
	if !ok || len(host) == 0 {
		return fmt.Errorf("bad hostname: %w", errStamp)
	}
	path, ok := r.lp()
	if !ok || len(path) == 0 || path[0] != '/' {
		return fmt.Errorf("bad path: %w", errStamp)
	}
	st.Host, st.Path = string(host), string(path)
	return nil
}

// readTail reads what may follow the path: a pinned target's hashes, or
// a relay's bootstrap resolvers.
func (st *Stamp) readTail(r *stampReader) error {
	if len(r.b) == 0 {
		return nil
	}
	list, ok := r.vlp()
	if !ok {
		return fmt.Errorf("bad list after the path: %w", errStamp)
	}
	if st.Proto == StampODoHTarget {
		for _, h := range list {
			if len(h) == 0 {
				return fmt.Errorf("empty hash: %w", errStamp)
			}
		}
		st.Hashes = list
		return nil
	}
	for _, x := range list {
		st.Bootstrap = append(st.Bootstrap, string(x))
	}
	return nil
}

// Encode returns the stamp as sdns://…, or an error when a field does not
// fit the format: single fields are at most 255 bytes, list elements
// (hashes, bootstrap resolvers) at most 127, the host is not empty and the
// path is absolute.
func (s Stamp) Encode() (string, error) {
	if s.Proto != StampODoHTarget && s.Proto != StampODoHRelay {
		return "", fmt.Errorf("stamp protocol 0x%02x is not ODoH: %w", byte(s.Proto), errStamp)
	}
	fields := map[string]string{"host": s.Host, "path": s.Path}
	if s.Proto == StampODoHRelay {
		fields["addr"] = s.Addr
	}
	for name, v := range fields {
		if len(v) > 255 {
			return "", fmt.Errorf("stamp %s is %d bytes, over 255: %w", name, len(v), errStamp)
		}
	}
	if s.Host == "" || !strings.HasPrefix(s.Path, "/") {
		return "", fmt.Errorf("stamp needs a host and an absolute path: %w", errStamp)
	}
	if s.Proto == StampODoHTarget && (s.Addr != "" || len(s.Bootstrap) > 0) {
		return "", fmt.Errorf("a target stamp has no address or bootstrap resolvers: %w", errStamp)
	}
	for _, h := range s.Hashes {
		if len(h) > 127 || len(h) == 0 && s.Proto == StampODoHTarget {
			return "", fmt.Errorf("stamp hash is %d bytes, want 1 to 127: %w", len(h), errStamp)
		}
	}
	for _, x := range s.Bootstrap {
		if len(x) > 127 {
			return "", fmt.Errorf("stamp bootstrap resolver is %d bytes, over 127: %w", len(x), errStamp)
		}
	}
	return s.encode(), nil
}

// String returns the stamp as sdns://…, or "" when [Stamp.Encode] would
// fail: never a stamp that decodes to something else.
func (s Stamp) String() string {
	str, err := s.Encode()
	if err != nil {
		return ""
	}
	return str
}

func (s Stamp) encode() string {
	b := []byte{byte(s.Proto)}
	for i := range 8 {
		b = append(b, byte(s.Props>>(8*i)))
	}
	if s.Proto == StampODoHRelay {
		b = appendLP(b, []byte(s.Addr))
		b = appendVLP(b, s.Hashes)
	}
	b = appendLP(b, []byte(s.Host))
	b = appendLP(b, []byte(s.Path))
	if s.Proto == StampODoHTarget && len(s.Hashes) > 0 {
		b = appendVLP(b, s.Hashes)
	}
	if s.Proto == StampODoHRelay && len(s.Bootstrap) > 0 {
		var bs [][]byte
		for _, x := range s.Bootstrap {
			bs = append(bs, []byte(x))
		}
		b = appendVLP(b, bs)
	}
	return stampPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// URL returns https://Host+Path: a target's URL, or a relay's base URL.
func (s Stamp) URL() string { return "https://" + s.Host + s.Path }

func appendLP(b, x []byte) []byte {
	return append(append(b, byte(len(x))), x...)
}

// appendVLP writes a variable-length list: every element but the last has
// 0x80 set in its length byte. An empty list is one zero byte.
func appendVLP(b []byte, xs [][]byte) []byte {
	if len(xs) == 0 {
		return append(b, 0)
	}
	for i, x := range xs {
		l := byte(len(x))
		if i < len(xs)-1 {
			l |= 0x80
		}
		b = append(append(b, l), x...)
	}
	return b
}

type stampReader struct{ b []byte }

func (r *stampReader) byte() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *stampReader) take(n int) ([]byte, bool) {
	if len(r.b) < n {
		return nil, false
	}
	x := r.b[:n]
	r.b = r.b[n:]
	return x, true
}

func (r *stampReader) lp() ([]byte, bool) {
	n, ok := r.byte()
	if !ok {
		return nil, false
	}
	return r.take(int(n))
}

func (r *stampReader) vlp() ([][]byte, bool) {
	var xs [][]byte
	for {
		n, ok := r.byte()
		if !ok {
			return nil, false
		}
		x, ok := r.take(int(n & 0x7f))
		if !ok {
			return nil, false
		}
		xs = append(xs, x)
		if n&0x80 == 0 {
			return xs, true
		}
	}
}

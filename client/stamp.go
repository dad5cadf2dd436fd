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

// The other protocols of DNS stamps, which DecodeStamp reads so that
// a stamp can be shown, but which a Client does not use.
const (
	StampPlain         StampProto = 0x00 // plain DNS
	StampDNSCrypt      StampProto = 0x01 // DNSCrypt
	StampDoH           StampProto = 0x02 // DNS over HTTPS (RFC 8484)
	StampDoT           StampProto = 0x03 // DNS over TLS (RFC 7858)
	StampDoQ           StampProto = 0x04 // DNS over QUIC (RFC 9250)
	StampDNSCryptRelay StampProto = 0x81 // an anonymized DNSCrypt relay
)

// String names the protocol ("DoH", "ODoH target", …).
func (p StampProto) String() string {
	switch p {
	case StampPlain:
		return "plain DNS"
	case StampDNSCrypt:
		return "DNSCrypt"
	case StampDoH:
		return "DoH"
	case StampDoT:
		return "DoT"
	case StampDoQ:
		return "DoQ"
	case StampODoHTarget:
		return "ODoH target"
	case StampDNSCryptRelay:
		return "DNSCrypt relay"
	case StampODoHRelay:
		return "ODoH relay"
	}
	return fmt.Sprintf("protocol 0x%02x", byte(p))
}

// Stamp property bits (8-byte little-endian bit set in a stamp).
const (
	StampDNSSEC   uint64 = 1 << 0 // the server validates DNSSEC
	StampNoLogs   uint64 = 1 << 1 // the server keeps no logs
	StampNoFilter uint64 = 1 << 2 // the server does not filter answers
)

const stampPrefix = "sdns://"

// Stamp is a DNS stamp (sdns://), the format of the DNS-stub ecosystem
// (draft-denis-dns-stamps). An ODoH target stamp (0x05) holds Props, Host
// and Path; an ODoH relay stamp (0x85) also holds Addr, Hashes and
// Bootstrap, like a DoH stamp. DecodeStamp also reads the other protocols'
// stamps, into the fields each has (PublicKey and ProviderName for
// DNSCrypt); ParseStamp, Encode and a Client take ODoH stamps only.
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
	// PublicKey and ProviderName are a DNSCrypt server's (DecodeStamp
	// only).
	PublicKey    []byte
	ProviderName string
}

var errStamp = errors.New("malformed stamp")

// ParseStamp decodes an ODoH target or relay stamp. Any other stamp is an
// error that names its protocol.
func ParseStamp(s string) (Stamp, error) {
	st, err := DecodeStamp(s)
	if err != nil {
		return st, err
	}
	if st.Proto != StampODoHTarget && st.Proto != StampODoHRelay {
		return Stamp{}, fmt.Errorf("stamp %q is %s %s stamp, not an ODoH one: ODoH needs a target stamp (sdns://BQ…) or a relay stamp (sdns://hQ…)", s, article(st.Proto), st.Proto)
	}
	return st, nil
}

// article is "a" or "an", as the protocol's name needs.
func article(p StampProto) string {
	if strings.HasPrefix(p.String(), "ODoH") {
		return "an"
	}
	return "a"
}

// stampFields are the fields of each protocol's stamp, in order after the
// protocol byte (and the properties, which every stamp but the DNSCrypt
// relay's has).
var stampFields = map[StampProto][]string{
	StampPlain:         {"addr"},
	StampDNSCrypt:      {"addr", "pk", "provider"},
	StampDoH:           {"addr", "hashes", "host", "path", "bootstrap?"},
	StampDoT:           {"addr", "hashes", "host", "bootstrap?"},
	StampDoQ:           {"addr", "hashes", "host", "bootstrap?"},
	StampODoHTarget:    {"host", "path", "hashes?"},
	StampDNSCryptRelay: {"addr"},
	StampODoHRelay:     {"addr", "hashes", "host", "path", "bootstrap?"},
}

// DecodeStamp decodes a DNS stamp of any protocol, for showing it; use
// ParseStamp for a stamp to use.
func DecodeStamp(s string) (Stamp, error) {
	var st Stamp
	if !strings.HasPrefix(s, stampPrefix) {
		return st, fmt.Errorf("stamp %q: no sdns:// prefix: %w", s, errStamp)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s[len(stampPrefix):], "="))
	if err != nil {
		return st, fmt.Errorf("stamp %q is not base64url (%w): copy the whole stamp: %w", s, err, errStamp)
	}
	r := stampReader{b: b}
	proto, ok := r.byte()
	if !ok {
		return st, fmt.Errorf("stamp %q: empty: %w", s, errStamp)
	}
	st.Proto = StampProto(proto)
	fields, known := stampFields[st.Proto]
	if !known {
		return st, fmt.Errorf("stamp %q: unknown protocol 0x%02x, so not a DNS stamp: copy the whole stamp: %w", s, proto, errStamp)
	}
	bad := st.readProps(&r)
	for _, f := range fields {
		if bad != "" {
			break
		}
		name, optional := strings.CutSuffix(f, "?")
		if optional && len(r.b) == 0 {
			break
		}
		bad = st.readField(&r, name, optional)
	}
	if bad != "" {
		return Stamp{}, fmt.Errorf("stamp %q: %s %s stamp with a bad %s (is it cut short? copy the whole stamp): %w",
			s, article(st.Proto), st.Proto, bad, errStamp)
	}
	if len(r.b) != 0 {
		return Stamp{}, fmt.Errorf("stamp %q: trailing bytes after %s %s stamp: %w", s, article(st.Proto), st.Proto, errStamp)
	}
	return st, nil
}

// readProps reads the properties, which every stamp but the DNSCrypt
// relay's has; it returns what is bad, or "".
func (st *Stamp) readProps(r *stampReader) string {
	if st.Proto == StampDNSCryptRelay {
		return ""
	}
	props, ok := r.take(8)
	if !ok {
		return "properties field"
	}
	for i := 7; i >= 0; i-- {
		st.Props = st.Props<<8 | uint64(props[i])
	}
	return ""
}

// readField reads one field of stampFields into st; it returns what is
// bad, or "". An optional hash list (a pinned target's) may not be empty.
func (st *Stamp) readField(r *stampReader, name string, optional bool) string {
	if name == "hashes" || name == "bootstrap" {
		list, ok := r.vlp()
		empty := len(list) == 1 && len(list[0]) == 0
		switch {
		case !ok:
			return map[string]string{"hashes": "hash list", "bootstrap": "bootstrap list"}[name]
		case name == "bootstrap":
			for _, x := range list {
				st.Bootstrap = append(st.Bootstrap, string(x))
			}
		case optional && empty:
			return "hash list"
		case !empty:
			st.Hashes = list
		}
		return ""
	}
	v, ok := r.lp()
	switch {
	case !ok && name == "addr":
		return "address"
	case !ok && name == "provider":
		return "provider name"
	case (!ok || len(v) == 0) && name == "pk":
		return "public key"
	case (!ok || len(v) == 0) && name == "host":
		return "hostname"
	case (!ok || len(v) == 0 || v[0] != '/') && name == "path":
		return "path"
	}
	switch name {
	case "addr":
		st.Addr = string(v)
	case "provider":
		st.ProviderName = string(v)
	case "pk":
		st.PublicKey = v
	case "host":
		st.Host = string(v)
	case "path":
		st.Path = string(v)
	}
	return ""
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

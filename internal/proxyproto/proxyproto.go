// Package proxyproto parses the PROXY protocol header (versions 1 and 2)
// that a load balancer such as HAProxy sends at the start of a TCP
// connection to name the client it relays, as specified in HAProxy's
// "The PROXY protocol" (proxy-protocol.txt, versions 1 and 2).
//
// Only the addresses are read: version 2 TLVs are skipped. A header whose
// command is LOCAL (the balancer's own health check), whose family is
// UNSPEC or AF_UNIX, or a version 1 "UNKNOWN" header carries no client
// address: Header.Local is set and the connection's own address applies.
//
// The package only parses; internal/connlimit decides whom to believe.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Sizes of the protocol.
const (
	// MaxV1 is the longest version 1 header, CRLF included.
	MaxV1 = 107
	// v2Fixed is the size of a version 2 header before its addresses.
	v2Fixed = 16
	// DefaultMaxV2 bounds a version 2 header, TLVs included, in Read: the
	// addresses take at most 216 bytes; the rest is room for the TLVs
	// balancers add (TLS details, cloud endpoint IDs).
	DefaultMaxV2 = 4096
)

var (
	v1Prefix = []byte("PROXY ")
	// v2Sig is the version 2 signature: "\r\n\r\n\x00\r\nQUIT\n".
	v2Sig = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}
)

// Errors of Parse and Read.
var (
	// ErrNoHeader means the bytes do not start with a PROXY signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrIncomplete means the bytes are a prefix of a header: read more.
	ErrIncomplete = errors.New("proxyproto: incomplete PROXY protocol header")
	// ErrMalformed wraps every error about a header that is not valid.
	ErrMalformed = errors.New("proxyproto: malformed PROXY protocol header")
)

// Header is what a PROXY protocol header says.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is set when the header names no client (LOCAL command,
	// UNKNOWN or UNSPEC family, AF_UNIX): the connection's own addresses
	// apply.
	Local bool
	// Source and Destination are the relayed connection's client and
	// server addresses when Local is false.
	Source, Destination netip.AddrPort
}

// HasSignature reports whether b starts with a whole version 1 ("PROXY ")
// or version 2 signature. A TLS or DNS-over-TCP stream never does.
func HasSignature(b []byte) bool {
	return bytes.HasPrefix(b, v1Prefix) || bytes.HasPrefix(b, v2Sig)
}

// Parse parses the header at the start of b and returns it with its
// length in bytes. It returns ErrNoHeader if b cannot start a header,
// ErrIncomplete if b is a prefix of one that may still be valid, or an
// error wrapping ErrMalformed.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) >= len(v2Sig) && bytes.Equal(b[:len(v2Sig)], v2Sig):
		return parseV2(b)
	case len(b) >= len(v1Prefix) && bytes.Equal(b[:len(v1Prefix)], v1Prefix):
		return parseV1(b)
	case bytes.HasPrefix(v2Sig, b) || bytes.HasPrefix(v1Prefix, b):
		return Header{}, 0, ErrIncomplete
	}
	return Header{}, 0, ErrNoHeader
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseV1 parses "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
// "PROXY UNKNOWN...\r\n"; b starts with "PROXY ".
func parseV1(b []byte) (Header, int, error) {
	end := bytes.Index(b[:min(len(b), MaxV1)], []byte("\r\n"))
	// A CR or LF anywhere but in the final CRLF is malformed, whether or
	// not the CRLF has arrived yet.
	seen := b[:min(len(b), MaxV1)]
	if end >= 0 {
		seen = b[:end]
	} else if len(seen) > 0 && seen[len(seen)-1] == '\r' {
		seen = seen[:len(seen)-1]
	}
	if bytes.ContainsAny(seen, "\r\n") {
		return Header{}, 0, malformed("v1 line not ended by CRLF")
	}
	if end < 0 {
		if len(b) >= MaxV1 {
			return Header{}, 0, malformed("v1 line longer than %d bytes", MaxV1)
		}
		return Header{}, 0, ErrIncomplete
	}
	line, n := b[len(v1Prefix):end], end+2
	h := Header{Version: 1}
	if bytes.HasPrefix(line, []byte("UNKNOWN")) {
		// "the receiver must ignore anything presented before the CRLF"
		h.Local = true
		return h, n, nil
	}
	f := bytes.Split(line, []byte(" "))
	if len(f) != 5 {
		return Header{}, 0, malformed("v1 header with %d fields, want 5", len(f))
	}
	var want6 bool
	switch string(f[0]) {
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return Header{}, 0, malformed("v1 protocol %q", f[0])
	}
	src, err1 := v1Addr(f[1], want6)
	dst, err2 := v1Addr(f[2], want6)
	sport, err3 := v1Port(f[3])
	dport, err4 := v1Port(f[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Header{}, 0, err
	}
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

func v1Addr(s []byte, want6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(s))
	if err != nil || a.Zone() != "" || a.Is6() != want6 {
		return netip.Addr{}, malformed("v1 address %q", s)
	}
	return a, nil
}

// v1Port parses a decimal port without sign or leading zeros.
func v1Port(s []byte) (uint16, error) {
	if len(s) == 0 || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, malformed("v1 port %q", s)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, malformed("v1 port %q", s)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, malformed("v1 port %q", s)
	}
	return uint16(n), nil
}

// Version 2 commands, families and transports.
const (
	cmdLocal   = 0x0
	cmdProxy   = 0x1
	famUnspec  = 0x0
	famInet    = 0x1
	famInet6   = 0x2
	famUnix    = 0x3
	protoSpec  = 0x0
	protoTCP   = 0x1
	lenInet    = 4 + 4 + 2 + 2
	lenInet6   = 16 + 16 + 2 + 2
	lenUnixAll = 108 + 108
)

// parseV2 parses a binary header; b starts with the signature.
func parseV2(b []byte) (Header, int, error) {
	if len(b) < v2Fixed {
		return Header{}, 0, ErrIncomplete
	}
	verCmd, famProto := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, malformed("v2 version %d", verCmd>>4)
	}
	n := v2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < n {
		return Header{}, 0, ErrIncomplete
	}
	body := b[v2Fixed:n]
	h := Header{Version: 2}
	switch verCmd & 0xF {
	case cmdLocal:
		// A health check of the balancer itself: the addresses, if any,
		// must be ignored.
		h.Local = true
		return h, n, nil
	case cmdProxy:
	default:
		return Header{}, 0, malformed("v2 command %d", verCmd&0xF)
	}
	fam, proto := famProto>>4, famProto&0xF
	if proto != protoSpec && proto != protoTCP {
		// DGRAM (or worse) on a stream connection.
		return Header{}, 0, malformed("v2 transport %d on a TCP connection", proto)
	}
	switch fam {
	case famUnspec:
		h.Local = true
	case famInet:
		if len(body) < lenInet {
			return Header{}, 0, malformed("v2 IPv4 addresses in %d bytes", len(body))
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case famInet6:
		if len(body) < lenInet6 {
			return Header{}, 0, malformed("v2 IPv6 addresses in %d bytes", len(body))
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	case famUnix:
		if len(body) < lenUnixAll {
			return Header{}, 0, malformed("v2 unix addresses in %d bytes", len(body))
		}
		h.Local = true
	default:
		return Header{}, 0, malformed("v2 address family %d", fam)
	}
	if !h.Local && proto != protoTCP {
		return Header{}, 0, malformed("v2 addresses with an unspecified transport")
	}
	return h, n, nil
}

// Read reads a header from r, which must start with one, reading no more
// than maxLen bytes (DefaultMaxV2 if zero). It returns the header and the
// bytes read past it, which belong to the connection's payload. A stream
// that does not start with a header is an error wrapping ErrNoHeader.
func Read(r io.Reader, maxLen int) (Header, []byte, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxV2
	}
	buf := make([]byte, 0, 256)
	for {
		h, n, err := Parse(buf)
		switch {
		case err == nil:
			return h, buf[n:], nil
		case !errors.Is(err, ErrIncomplete):
			return Header{}, nil, err
		case len(buf) >= maxLen:
			return Header{}, nil, malformed("header longer than %d bytes", maxLen)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), maxLen)])
		buf = buf[:len(buf)+m]
		if err != nil && m == 0 {
			if errors.Is(err, io.EOF) {
				if len(buf) == 0 {
					return Header{}, nil, fmt.Errorf("%w: connection closed before any byte", ErrNoHeader)
				}
				err = io.ErrUnexpectedEOF
			}
			return Header{}, nil, fmt.Errorf("proxyproto: reading header: %w", err)
		}
	}
}

// Package tlshello reads the server name (SNI, RFC 6066 §3) of a TLS
// ClientHello (RFC 8446 §4.1.2; the TLS 1.2 form of RFC 5246 §7.4.1.2 too)
// from the first record of a connection, as a relay that must know where
// a TLS session it carries is going reads it. It parses the plaintext
// framing only, strictly, and never panics.
package tlshello

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxRecord is the largest record Read accepts: a plaintext record's
// fragment may hold 2^14 bytes (RFC 8446 §5.1).
const MaxRecord = 5 + 1<<14

// ErrNotHello: the bytes are not a TLS record holding one whole
// ClientHello. A ClientHello split over several records (legal, and not
// what any common client sends) is refused too.
var ErrNotHello = errors.New("not a TLS ClientHello record")

const (
	recordHandshake   = 0x16
	typeClientHello   = 0x01
	extServerName     = 0x0000
	nameTypeHostName  = 0x00
	recordHeaderLen   = 5
	handshakeHeadLen  = 4
	randomLen         = 32
	maxSessionIDLen   = 32
	legacyVersionSize = 2
)

// Read reads one TLS record from r and returns it with the ClientHello's
// server name ("" when it sends none). It reads exactly the record, no
// byte past it.
func Read(r io.Reader) (record []byte, serverName string, err error) {
	var hdr [recordHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, "", err
	}
	if hdr[0] != recordHandshake {
		return nil, "", fmt.Errorf("%w: record type %d", ErrNotHello, hdr[0])
	}
	n := int(binary.BigEndian.Uint16(hdr[3:5]))
	if recordHeaderLen+n > MaxRecord {
		return nil, "", fmt.Errorf("%w: a %d-byte record", ErrNotHello, n)
	}
	record = make([]byte, recordHeaderLen+n)
	copy(record, hdr[:])
	if _, err := io.ReadFull(r, record[recordHeaderLen:]); err != nil {
		return nil, "", err
	}
	name, err := ServerName(record)
	if err != nil {
		return nil, "", err
	}
	return record, name, nil
}

// ServerName returns the server name of the ClientHello in record (a
// whole TLS record, header included), or "" when it has no server_name
// extension. A ServerNameList with other than one host_name, a repeated
// extension or any framing error is ErrNotHello.
func ServerName(record []byte) (string, error) {
	s := reader(record)
	typ, _ := s.u8()
	s.skip(legacyVersionSize)
	frag, ok := s.vec16()
	if typ != recordHandshake || !ok || !s.empty() {
		return "", fmt.Errorf("%w: record framing", ErrNotHello)
	}
	msgType, _ := frag.u8()
	body, ok := frag.vec24()
	if msgType != typeClientHello || !ok || !frag.empty() {
		return "", fmt.Errorf("%w: not one whole ClientHello", ErrNotHello)
	}
	body.skip(legacyVersionSize + randomLen)
	sid, ok := body.vec8()
	if !ok || len(sid) > maxSessionIDLen {
		return "", fmt.Errorf("%w: session id", ErrNotHello)
	}
	if suites, ok := body.vec16(); !ok || len(suites) == 0 || len(suites)%2 != 0 {
		return "", fmt.Errorf("%w: cipher suites", ErrNotHello)
	}
	if comp, ok := body.vec8(); !ok || len(comp) == 0 {
		return "", fmt.Errorf("%w: compression methods", ErrNotHello)
	}
	if body.empty() {
		return "", nil // a TLS 1.2 hello may have no extensions at all
	}
	exts, ok := body.vec16()
	if !ok || !body.empty() {
		return "", fmt.Errorf("%w: extensions", ErrNotHello)
	}
	name, found := "", false
	for !exts.empty() {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: extension framing", ErrNotHello)
		}
		if typ != extServerName {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: two server_name extensions", ErrNotHello)
		}
		found = true
		var err error
		if name, err = hostName(data); err != nil {
			return "", err
		}
	}
	return name, nil
}

// hostName reads a server_name extension's data: a ServerNameList that
// must hold exactly one host_name (RFC 6066 §3: no two of one type, and
// host_name is the only type defined).
func hostName(data reader) (string, error) {
	list, ok := data.vec16()
	if !ok || !data.empty() {
		return "", fmt.Errorf("%w: server_name framing", ErrNotHello)
	}
	typ, _ := list.u8()
	name, ok := list.vec16()
	if typ != nameTypeHostName || !ok || len(name) == 0 || !list.empty() {
		return "", fmt.Errorf("%w: want one host_name in server_name", ErrNotHello)
	}
	return string(name), nil
}

// reader is a cursor over bytes; a short read empties it and fails, so
// that every later read fails too.
type reader []byte

func (r *reader) empty() bool { return len(*r) == 0 }

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || len(*r) < n {
		*r = nil
		return nil, false
	}
	b := (*r)[:n:n]
	*r = (*r)[n:]
	return b, true
}

func (r *reader) skip(n int) { _, _ = r.take(n) }

func (r *reader) u8() (byte, bool) {
	b, ok := r.take(1)
	if !ok {
		return 0, false
	}
	return b[0], true
}

func (r *reader) u16() (uint16, bool) {
	b, ok := r.take(2)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (r *reader) vec8() (reader, bool) {
	n, ok := r.u8()
	if !ok {
		return nil, false
	}
	return r.take(int(n))
}

func (r *reader) vec16() (reader, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	return r.take(int(n))
}

func (r *reader) vec24() (reader, bool) {
	b, ok := r.take(3)
	if !ok {
		return nil, false
	}
	return r.take(int(b[0])<<16 | int(b[1])<<8 | int(b[2]))
}

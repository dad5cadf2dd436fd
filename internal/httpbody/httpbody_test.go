package httpbody

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRead(t *testing.T) {
	body := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name            string
		r               io.Reader
		declared, limit int64
		want            string
		wantErr         error
	}{
		{"declared", strings.NewReader(body), 100, 100, body, nil},
		{"unknown length", strings.NewReader(body), -1, 100, body, nil},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(body)), -1, 100, body, nil},
		{"empty", strings.NewReader(""), 0, 100, "", nil},
		{"declared too large", strings.NewReader(body), 101, 100, "", ErrTooLarge},
		{"undeclared too large", strings.NewReader(body + "y"), -1, 100, "", ErrTooLarge},
		{"lying length", strings.NewReader(body + "y"), 10, 100, "", ErrTooLarge},
		{"read error", iotest.ErrReader(io.ErrUnexpectedEOF), -1, 100, "", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(tc.r, nil, tc.declared, tc.limit)
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && string(got) != tc.want {
				t.Fatalf("Read = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
			if int64(cap(got)) > tc.limit+2 && tc.declared >= 0 {
				t.Errorf("allocated %d bytes for a limit of %d", cap(got), tc.limit)
			}
		})
	}
}

func TestReadAppendsToBuffer(t *testing.T) {
	buf := make([]byte, 0, 4)
	buf = append(buf, "ab"...)
	got, err := Read(strings.NewReader("cdef"), buf, 4, 4)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	// The limit counts what Read reads, not what buf held.
	if _, err := Read(strings.NewReader("cdefg"), []byte("ab"), -1, 4); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	// A pooled buffer big enough is reused, not reallocated.
	pool := make([]byte, 0, 64)
	got, _ = Read(bytes.NewReader([]byte("hello")), pool, 5, 64)
	if &got[0] != &pool[:1][0] {
		t.Error("a buffer with room was reallocated")
	}
}

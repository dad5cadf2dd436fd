package httpbody

import (
	"bytes"
	"errors"
	"io"
	"runtime"
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

// TestReadHoldsWhatArrived: a body that declares 65000 bytes and stalls
// costs what arrived (in 4 KiB chunks), not what it declared.
func TestReadHoldsWhatArrived(t *testing.T) {
	stalled := errors.New("client stalled")
	for _, arrived := range []int{0, 10, 4096, 10000, 40000} {
		r := io.MultiReader(iotest.OneByteReader(bytes.NewReader(make([]byte, arrived))), iotest.ErrReader(stalled))
		var err error
		n := allocated(func() { _, err = Read(r, make([]byte, 0, 1024), 65000, 65535) })
		if !errors.Is(err, stalled) {
			t.Fatalf("%d bytes arrived: %v", arrived, err)
		}
		// The buffer, the chunks of what arrived, and slack for the rest
		// (the race detector allocates too): far below 65000 all the same.
		if most := uint64(arrived + 1024 + chunkSize + 8192); n > most {
			t.Errorf("%d of 65000 declared bytes arrived: %d bytes allocated, want at most %d", arrived, n, most)
		}
	}
	// A small declared length is allocated at once, exactly.
	got, err := Read(strings.NewReader("hello"), nil, 5, 65535)
	if err != nil || string(got) != "hello" || cap(got) != 6 {
		t.Errorf("Read = %q (cap %d), %v; want hello in one allocation of 6", got, cap(got), err)
	}
}

// TestReadChunks: bodies larger than their buffer come back whole and in
// order, in a buffer of their exact size, whether the chunks are pooled or
// not, whatever the reads' sizes.
func TestReadChunks(t *testing.T) {
	var pool Chunks
	for i, size := range []int{1025, chunkSize, 3*chunkSize + 7, 65000, 65535} {
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(j*7 + i)
		}
		for _, c := range []*Chunks{nil, &pool, &pool} {
			for _, r := range []io.Reader{bytes.NewReader(body), iotest.HalfReader(bytes.NewReader(body)), iotest.DataErrReader(bytes.NewReader(body))} {
				buf := append(make([]byte, 0, 1024), "pre"...)
				got, err := c.Read(r, buf, -1, 65535)
				if err != nil || !bytes.Equal(got[3:], body) || string(got[:3]) != "pre" {
					t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
				}
				if cap(got) != len(got) && len(got) > 1024 {
					t.Errorf("size %d: cap %d, want the exact %d", size, cap(got), len(got))
				}
			}
		}
	}
	if _, err := pool.Read(bytes.NewReader(make([]byte, 65536)), nil, -1, 65535); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte over the limit, in chunks: %v", err)
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

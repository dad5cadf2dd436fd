package odoh

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// fuzzVectors returns the test vectors when they can be read, for seeding;
// fuzzing itself never depends on them.
func fuzzVectors() vectorFile {
	v, _ := readVectors() // a missing file just means fewer seeds
	return v
}

// isSentinel reports whether err wraps one of the package's sentinels, the
// invariant every error must keep.
func isSentinel(err error) bool {
	for _, s := range []error{ErrMalformed, ErrKeyMismatch, ErrDecrypt, ErrEncrypt, ErrUnsupported, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzParseConfigs(f *testing.F) {
	for _, v := range fuzzVectors() {
		f.Add([]byte(v.Configs))
	}
	key, _ := GenerateKey(Suite{KEM: KEMP256, KDF: KDFHKDFSHA512, AEAD: AEADAES256GCM})
	b, _ := MarshalConfigs(key.Config())
	f.Add(b)
	f.Add([]byte{0, 4, 0xff, 3, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfgs, err := ParseConfigs(in)
		if err != nil {
			if !isSentinel(err) || cfgs != nil {
				t.Fatalf("bad error %v (configs %v)", err, cfgs)
			}
			return
		}
		// What parses re-serializes, and parses back to the same configs.
		out, err := MarshalConfigs(cfgs...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfigs(out)
		if err != nil || len(again) != len(cfgs) {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range cfgs {
			if !again[i].Equal(cfgs[i]) || !bytes.Equal(again[i].KeyID(), cfgs[i].KeyID()) {
				t.Fatalf("config %d changed", i)
			}
			if !bytes.Contains(in, cfgs[i].contents) {
				t.Fatalf("config %d contents not from the input", i)
			}
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	for _, v := range fuzzVectors() {
		for _, tx := range v.Transactions {
			f.Add([]byte(tx.ObliviousQuery))
			f.Add([]byte(tx.ObliviousResponse))
		}
	}
	f.Add([]byte{1, 0xff, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMessage(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("re-marshalled %x, %v", out, err)
		}
	})
}

func FuzzParsePlaintext(f *testing.F) {
	for _, v := range fuzzVectors() {
		for _, tx := range v.Transactions[:4] {
			p := make([]byte, plaintextLen(len(tx.Query), tx.QueryPadding))
			putPlaintext(p, tx.Query, tx.QueryPadding)
			f.Add(p)
		}
	}
	f.Add([]byte{0, 1, 0xaa, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		msg, err := parsePlaintext(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		// Only canonical plaintexts with zero padding parse.
		out := make([]byte, len(in))
		putPlaintext(out, msg, len(in)-4-len(msg))
		if !bytes.Equal(out, in) {
			t.Fatalf("rebuilt %x from %x", out, in)
		}
	})
}

// FuzzOpenQuery drives the whole target path with the vectors' key.
func FuzzOpenQuery(f *testing.F) {
	seed, _ := hex.DecodeString("c9d84d04e6369fccb8a4d5a264001491221f1b97d9b80dd32c35834bb4462383")
	key, err := DeriveKey(DefaultSuite(), seed)
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range fuzzVectors() {
		for _, tx := range v.Transactions {
			f.Add([]byte(tx.ObliviousQuery))
		}
	}
	msg, _, _ := SealQuery(key.Config(), []byte{0xaa, 0xbb})
	f.Add(msg)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMessage(in)
		if err != nil {
			return
		}
		q, err := key.OpenQuery(m)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if len(q.DNS) == 0 {
			t.Fatal("opened an empty message")
		}
		if _, err := q.SealResponse(q.DNS); err != nil {
			t.Fatalf("sealing the echo: %v", err)
		}
	})
}

// FuzzOpenResponse feeds arbitrary responses to a client context.
func FuzzOpenResponse(f *testing.F) {
	key, err := GenerateKey(DefaultSuite())
	if err != nil {
		f.Fatal(err)
	}
	msg, qc, _ := SealQuery(key.Config(), []byte{0xaa})
	m, _ := ParseMessage(msg)
	q, _ := key.OpenQuery(m)
	resp, _ := q.SealResponse([]byte{0xbb, 0xcc})
	f.Add(resp)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := qc.OpenResponse(in)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if len(out) == 0 {
			t.Fatal("opened an empty message")
		}
	})
}

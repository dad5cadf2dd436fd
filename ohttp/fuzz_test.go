package ohttp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/odohd/odoh/odoh"
)

func isSentinel(err error) bool {
	for _, s := range []error{odoh.ErrMalformed, odoh.ErrKeyMismatch, odoh.ErrDecrypt, odoh.ErrEncrypt, odoh.ErrUnsupported} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Invariants: no panic; errors wrap a sentinel and come with no
// configurations; what parses re-serializes to a list that parses to the
// same configurations, each of which was in the input.
func FuzzParseKeyConfigs(f *testing.F) {
	good := h(f, appendixA.keyConfig)
	f.Add(append([]byte{0, byte(len(good))}, good...))
	p256, _ := GenerateKey(3, odoh.KEMP256, allSymmetric()...)
	list, _ := MarshalKeyConfigs(p256.Config(), appendixAKey(f).Config())
	f.Add(list)
	f.Add([]byte{0, 3, 1, 0, 0x21})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfgs, err := ParseKeyConfigs(in)
		if err != nil {
			if !isSentinel(err) || cfgs != nil {
				t.Fatalf("bad error %v (configs %v)", err, cfgs)
			}
			return
		}
		out, err := MarshalKeyConfigs(cfgs...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseKeyConfigs(out)
		if err != nil || len(again) != len(cfgs) {
			t.Fatalf("re-parse: %v", err)
		}
		for i, c := range cfgs {
			enc, _ := c.MarshalBinary()
			if !again[i].Equal(c) || !bytes.Contains(in, enc) {
				t.Fatalf("configuration %d changed or not from the input", i)
			}
			if !c.Suite().Supported() {
				t.Fatalf("configuration %d has no usable suite", i)
			}
		}
	})
}

// The gateway side of any bytes: no panic; errors wrap a sentinel and
// return nothing; a request that decapsulates names the key and gets a
// response of the right size.
func FuzzDecapsulateRequest(f *testing.F) {
	k := appendixAKey(f)
	f.Add(h(f, appendixA.encRequest))
	for _, sym := range k.Config().Symmetric() {
		c, _ := NewKeyConfig(1, odoh.KEMX25519, k.Config().PublicKey(), []Symmetric{sym})
		req, _, _ := EncapsulateRequest(c, []byte{0, 3, 'G', 'E', 'T'})
		f.Add(req)
	}
	f.Add([]byte{1, 0, 0x20, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		hdr, herr := ParseRequestHeader(in)
		req, g, err := k.DecapsulateRequest(in)
		if err != nil {
			if !isSentinel(err) || req != nil || g != nil {
				t.Fatalf("bad error %v", err)
			}
			if herr == nil && hdr.KeyID != 1 && !errors.Is(err, odoh.ErrKeyMismatch) {
				t.Fatalf("key ID %d: %v, want a key mismatch", hdr.KeyID, err)
			}
			return
		}
		if herr != nil || hdr.KeyID != k.KeyID() || hdr.Suite.KEM != odoh.KEMX25519 {
			t.Fatalf("decapsulated a request with header %+v (%v)", hdr, herr)
		}
		if want := len(in) - headerSize - 32 - 16; len(req) != want {
			t.Fatalf("request is %d bytes, want %d", len(req), want)
		}
		res, err := g.EncapsulateResponse(req)
		if err != nil || len(res) != hdr.Suite.AEAD.ResponseNonceSize()+len(req)+16 {
			t.Fatalf("response %d bytes, %v", len(res), err)
		}
	})
}

// The client side of any bytes coming back through the relay.
func FuzzDecapsulateResponse(f *testing.F) {
	cfg, _ := ParseKeyConfig(h(f, appendixA.keyConfig))
	_, c, err := EncapsulateRequest(cfg, []byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h(f, appendixA.encResponse))
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := c.DecapsulateResponse(in)
		if err == nil {
			t.Fatalf("forged response opened: %x", res)
		}
		if !isSentinel(err) || res != nil {
			t.Fatalf("bad error %v", err)
		}
	})
}

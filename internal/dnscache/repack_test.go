package dnscache

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

// TestCheckRepacksFrom: an answer is relayable when it packs back to the
// bytes it came from, or to others that unpack (a compressed answer packs
// back uncompressed); one whose packing does not unpack is refused with or
// without the bytes it came from.
func TestCheckRepacksFrom(t *testing.T) {
	q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	a := new(dns.Msg).SetReply(q)
	a.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
	for _, compress := range []bool{false, true} {
		a.Compress = compress
		wire, err := a.Pack()
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		// Uncompressed, the fast path (the same bytes); compressed, the
		// unpacking of other bytes.
		if again, _ := r.Pack(); bytes.Equal(again, wire) == compress {
			t.Fatalf("compress %v: repacked to the same bytes %v: the case misses its path", compress, !compress)
		}
		if err := CheckRepacksFrom(r, wire); err != nil {
			t.Errorf("compress %v: %v", compress, err)
		}
	}
	// A TSIG with empty RDATA unpacks but packs without its algorithm
	// name, which then does not unpack.
	bad := []byte("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" +
		"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
		"\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00")
	r := new(dns.Msg)
	if err := r.Unpack(bad); err != nil {
		t.Fatalf("the answer must unpack for the test to mean anything: %v", err)
	}
	if err := CheckRepacksFrom(r, bad); err == nil {
		t.Error("CheckRepacksFrom took an answer that does not pack back")
	}
	if err := CheckRepacks(r); err == nil {
		t.Error("CheckRepacks took an answer that does not pack back")
	}
}

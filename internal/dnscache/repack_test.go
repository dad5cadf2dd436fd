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

// repackSeeds are answers for TestCheckRepacksFromCompressed and
// FuzzCheckRepacksFrom: compressed ones that pack back to their bytes with
// compression (the fast path), and ones with a record that unpacks from
// empty RDATA but packs back to bytes that do not unpack, compressed or not.
var repackSeeds = []struct {
	wire      string
	relayable bool
}{
	// www.example.com. A, the answer's owner a pointer to the question.
	{"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" +
		"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
		"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01", true},
	// A CNAME whose target compresses to a suffix of the question, then
	// its A.
	{"\x12\x34\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00" +
		"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
		"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x06\x03cdn\xc0\x10" +
		"\xc0\x2d\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01", true},
	// The answer above, then a compressed-owner TSIG with empty RDATA.
	{"\x12\x34\x81\x80\x00\x01\x00\x02\x00\x00\x00\x00" +
		"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
		"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01" +
		"\xc0\x0c\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00", false},
	// A compressed-owner SOA with empty RDATA in the authority section.
	{"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x01\x00\x00" +
		"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
		"\xc0\x10\x00\x06\x00\x01\x00\x00\x00\x3c\x00\x00", false},
}

// TestCheckRepacksFromCompressed: a compressed answer takes the fast path
// exactly when it packs back to its bytes with compression, and the fast
// path's verdict is CheckRepacks' for every seed.
func TestCheckRepacksFromCompressed(t *testing.T) {
	for i, s := range repackSeeds {
		wire := []byte(s.wire)
		if !firstRecordCompressed(wire) {
			t.Fatalf("seed %d: not seen as compressed: the case misses the fast path", i)
		}
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			t.Fatalf("seed %d must unpack for the test to mean anything: %v", i, err)
		}
		if s.relayable {
			m := *r
			m.Compress = true
			if again, _ := m.Pack(); !bytes.Equal(again, wire) {
				t.Fatalf("seed %d: packs back compressed to %q, not its bytes: the case misses the fast path", i, again)
			}
		}
		from, plain := CheckRepacksFrom(r, wire), CheckRepacks(r)
		if (from == nil) != s.relayable || (plain == nil) != s.relayable {
			t.Errorf("seed %d: CheckRepacksFrom %v, CheckRepacks %v; want relayable %v", i, from, plain, s.relayable)
		}
	}
}

// FuzzCheckRepacksFrom: for any bytes that unpack, CheckRepacksFrom with
// them reaches CheckRepacks' verdict: a fast path that took an answer
// CheckRepacks refuses fails here.
func FuzzCheckRepacksFrom(f *testing.F) {
	for _, s := range repackSeeds {
		f.Add([]byte(s.wire))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := new(dns.Msg)
		if r.Unpack(wire) != nil {
			return
		}
		from, plain := CheckRepacksFrom(r, wire), CheckRepacks(r)
		if (from == nil) != (plain == nil) {
			t.Fatalf("CheckRepacksFrom %v, CheckRepacks %v for %q", from, plain, wire)
		}
	})
}

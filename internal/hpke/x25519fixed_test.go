package hpke

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
)

// uBytes is the little-endian 32-byte encoding of the decimal or 0x-hex
// integer n (below 2^256).
func uBytes(t testing.TB, n string) [x25519Size]byte {
	v, ok := new(big.Int).SetString(n, 0)
	if !ok {
		t.Fatalf("bad integer %q", n)
	}
	var b [x25519Size]byte
	v.FillBytes(b[:])
	for i := range 16 {
		b[i], b[31-i] = b[31-i], b[i]
	}
	return b
}

// fixedCase names a public key for TestFixedShared and says whether it has
// an Edwards point (and so takes the table).
type fixedCase struct {
	name  string
	pk    [x25519Size]byte
	table bool
}

func fixedCases(t *testing.T) []fixedCase {
	const p = "57896044618658097711785492504343953926634992332820282019728792003956564819949" // 2^255 - 19
	cases := []fixedCase{
		// The points of small order (orders 1, 2, 4, 8) and their
		// non-canonical encodings: X25519 with a clamped scalar gives 0.
		{"u=0", uBytes(t, "0"), true},
		{"u=1 (order 4)", uBytes(t, "1"), true},
		{"order 8 (a)", uBytes(t, "325606250916557431795983626356110631294008115727848805560023387167927233504"), true},
		{"order 8 (b)", uBytes(t, "39382357235489614581723060781553021112529911719440698176882885853963445705823"), true},
		{"u=p (0)", uBytes(t, p), true},
		{"u=p+1 (1)", uBytes(t, "57896044618658097711785492504343953926634992332820282019728792003956564819950"), true},
		// u = -1 maps to no Edwards point: the ladder.
		{"u=p-1", uBytes(t, "57896044618658097711785492504343953926634992332820282019728792003956564819948"), false},
		// The top bit is ignored (RFC 7748 §5).
		{"top bit, u=9", uBytes(t, "0x8000000000000000000000000000000000000000000000000000000000000009"), true},
		{"base point u=9", uBytes(t, "9"), true},
		// u = 2 is on the twist (2^3 + A·2^2 + 2 is not a square).
		{"twist u=2", uBytes(t, "2"), false},
	}
	// 2^255-1 is u = 18, non-canonical.
	top := uBytes(t, "0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")
	cases = append(cases, fixedCase{"2^255-1", top, onCurve(top)})
	// Public keys of real key pairs (in the prime-order subgroup).
	for range 8 {
		var sk, pk x25519.Key
		_, _ = rand.Read(sk[:])
		x25519.KeyGen(&pk, &sk)
		cases = append(cases, fixedCase{"key pair", pk, true})
	}
	// Random u: half are on the curve, most of those with a component of
	// small order, which must survive (the scalar is not reduced modulo
	// the group order); the others on its twist.
	for range 32 {
		var pk [x25519Size]byte
		_, _ = rand.Read(pk[:])
		cases = append(cases, fixedCase{name: "random " + hex.EncodeToString(pk[:4]), pk: pk, table: onCurve(pk)})
	}
	return cases
}

// onCurve reports whether u (top bit ignored, reduced mod p) is the
// u-coordinate of a point of Curve25519 rather than of its twist: whether
// u^3 + 486662·u^2 + u is a square (Euler's criterion), computed with
// math/big, independently of the code under test.
func onCurve(pk [x25519Size]byte) bool {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := pk
	le[31] &= 127
	for i := range 16 {
		le[i], le[31-i] = le[31-i], le[i]
	}
	u := new(big.Int).Mod(new(big.Int).SetBytes(le[:]), p)
	if new(big.Int).Add(u, big.NewInt(1)).Cmp(p) == 0 {
		return false // u = -1: no Edwards point, whatever the curve
	}
	f := new(big.Int).Mul(u, u)
	f.Mul(f, u)
	f.Add(f, new(big.Int).Mul(big.NewInt(486662), new(big.Int).Mul(u, u)))
	f.Add(f, u).Mod(f, p)
	if f.Sign() == 0 {
		return true
	}
	e := new(big.Int).Rsh(new(big.Int).Sub(p, big.NewInt(1)), 1)
	return new(big.Int).Exp(f, e, p).Cmp(big.NewInt(1)) == 0
}

// The table's multiplication is X25519: for every kind of public key
// (small order, non-canonical, twist, real keys, random) and secrets at
// the edges and at random, the answer and its zero report are circl's
// ladder's; keys with an Edwards point take the table, the others the
// ladder.
func TestFixedShared(t *testing.T) {
	secrets := [][x25519Size]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for i := range 8 { // single digits at each end, to reach every table entry's sign
		var sk [x25519Size]byte
		sk[0] = byte(8 * (i + 1))
		sk[31] = byte(16 * i)
		secrets = append(secrets, sk)
	}
	for range 24 {
		var sk [x25519Size]byte
		_, _ = rand.Read(sk[:])
		secrets = append(secrets, sk)
	}
	tables := 0
	for _, c := range fixedCases(t) {
		k := &x25519Key{pk: c.pk}
		for _, sk := range secrets {
			var got, want [x25519Size]byte
			okGot := k.fixed.shared(&got, &sk, &k.pk)
			okWant := x25519Shared(&want, &sk, &c.pk)
			if got != want || okGot != okWant {
				t.Fatalf("%s: pk %x sk %x: %x (%v), the ladder says %x (%v)", c.name, c.pk, sk, got, okGot, want, okWant)
			}
			checkEncap(t, k, &sk, &want, okWant)
		}
		if (k.fixed.tab != nil) != c.table {
			t.Fatalf("%s: pk %x: table %v, want %v", c.name, c.pk, k.fixed.tab != nil, c.table)
		}
		if c.table {
			tables++
		}
	}
	if tables < 10 {
		t.Fatalf("only %d keys took the table", tables)
	}
}

// checkEncap checks encap's shared secret and public key against the
// ladder's (want, ok for X25519(sk, pk)).
func checkEncap(t *testing.T, k *x25519Key, sk, want *[x25519Size]byte, ok bool) {
	t.Helper()
	var dh, pub [x25519Size]byte
	var wantPub x25519.Key
	x25519.KeyGen(&wantPub, (*x25519.Key)(sk))
	if got := k.fixed.encap(&dh, &pub, sk, &k.pk); got != ok || (ok && (dh != *want || pub != wantPub)) {
		t.Fatalf("pk %x sk %x: encap %v dh %x pub %x, the ladder says %v %x %x", k.pk, sk, got, dh, pub, ok, *want, wantPub)
	}
}

// FuzzFixedShared: any public key and secret give the ladder's answer.
func FuzzFixedShared(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 32))
	f.Add([]byte{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, make([]byte, 32))
	f.Fuzz(func(t *testing.T, pk, sk []byte) {
		if len(pk) != x25519Size || len(sk) != x25519Size {
			return
		}
		k := new(x25519Key)
		copy(k.pk[:], pk)
		var s, got, want [x25519Size]byte
		copy(s[:], sk)
		okGot := k.fixed.shared(&got, &s, &k.pk)
		okWant := x25519Shared(&want, &s, &k.pk)
		if got != want || okGot != okWant {
			t.Fatalf("pk %x sk %x: %x (%v), the ladder says %x (%v)", pk, sk, got, okGot, want, okWant)
		}
		checkEncap(t, k, &s, &want, okWant)
	})
}

// BenchmarkX25519Shared compares, in one run, the sender's DH with the
// table against the ladder; "build" is the one-time table of a key.
func BenchmarkX25519Shared(b *testing.B) {
	var sk, pk x25519.Key
	_, _ = rand.Read(sk[:])
	x25519.KeyGen(&pk, &sk)
	var dh [x25519Size]byte
	b.Run("ladder", func(b *testing.B) {
		for b.Loop() {
			x25519Shared(&dh, (*[x25519Size]byte)(&sk), (*[x25519Size]byte)(&pk))
		}
	})
	b.Run("table", func(b *testing.B) {
		k := &x25519Key{pk: pk}
		for b.Loop() {
			k.fixed.shared(&dh, (*[x25519Size]byte)(&sk), &k.pk)
		}
	})
	// The sender's whole DHKEM point work: the DH and its public key.
	var pub [x25519Size]byte
	b.Run("encap/ladder+base", func(b *testing.B) {
		for b.Loop() {
			x25519Shared(&dh, (*[x25519Size]byte)(&sk), (*[x25519Size]byte)(&pk))
			x25519Public(&pub, (*[x25519Size]byte)(&sk))
		}
	})
	b.Run("encap/table", func(b *testing.B) {
		k := &x25519Key{pk: pk}
		for b.Loop() {
			k.fixed.encap(&dh, &pub, (*[x25519Size]byte)(&sk), &k.pk)
		}
	})
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			newFixedTable((*[x25519Size]byte)(&pk))
		}
	})
}

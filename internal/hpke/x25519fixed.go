package hpke

// A sender's DH with a receiver's public key that it uses again and again
// (every ODoH query to one target config): X25519(skE, pkR) as a
// fixed-point multiplication on the birationally equivalent Edwards curve
// (RFC 7748 §4.1), with a table of multiples of pkR computed once per key.
// The multiplication is then 64 mixed additions and 4 doublings instead of
// the Montgomery ladder's 255 steps: about a third of the ladder's cost.
//
// The scalar is the clamped ephemeral secret as an integer (not reduced
// modulo the group order), so that a public key with a small-order
// component gives X25519's answer, zero included. Everything that depends
// on the secret runs in constant time: the digits select table entries by
// masks, never by branches or indices. A public key that is not on the
// curve (on its twist: X25519 accepts those) or whose u is -1 has no
// Edwards point; it keeps the ladder.

import (
	"crypto/subtle"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// edD2 is 2·d of the Edwards curve, d = -121665/121666 (RFC 7748 §4.1).
var edD2 = sync.OnceValue(func() *field.Element {
	var n, den field.Element
	n.Mult32(new(field.Element).One(), 121665)
	n.Negate(&n)
	den.Mult32(new(field.Element).One(), 121666)
	d := new(field.Element).Multiply(&n, den.Invert(&den))
	return d.Add(d, d)
})

// niels is an affine point in the form the mixed addition wants:
// (y+x, y−x, 2d·x·y).
type niels struct{ ypx, ymx, xy2d field.Element }

// fixedTable holds j·256^i·P for i in [0, 32), j in [1, 8]: row i serves
// the digits of 16^(2i) and, after the final ·16, of 16^(2i+1).
type fixedTable [32][8]niels

// fixedKey is a receiver's X25519 public key with the table of its point,
// built on first use.
type fixedKey struct {
	once sync.Once
	tab  *fixedTable // nil: no Edwards point (twist, u = -1); use the ladder
}

// table returns the key's table, building it on first use; nil for a key
// without an Edwards point.
func (k *fixedKey) table(pk *[x25519Size]byte) *fixedTable {
	k.once.Do(func() { k.tab = newFixedTable(pk) })
	return k.tab
}

// shared sets dh to X25519(sk, pk) and reports whether it is not all
// zeros, as x25519Shared does.
func (k *fixedKey) shared(dh, sk, pk *[x25519Size]byte) bool {
	tab := k.table(pk)
	if tab == nil {
		return x25519Shared(dh, sk, pk)
	}
	var p extPoint
	tab.mult(&p, sk)
	var num, den field.Element
	num.Add(&p.Z, &p.Y)
	num.Multiply(&num, den.Invert(den.Subtract(&p.Z, &p.Y)))
	copy(dh[:], num.Bytes())
	return !isZero(dh)
}

// encap sets dh to X25519(sk, pk) and pub to X25519(sk, 9), the public key
// of sk, and reports whether dh is not all zeros (when it is, pub is not
// computed). With the table, both Montgomery u-coordinates come from one
// inversion (Montgomery's trick): u = (Z+Y)/(Z−Y) of each point.
func (k *fixedKey) encap(dh, pub, sk, pk *[x25519Size]byte) bool {
	tab := k.table(pk)
	if tab == nil {
		if !x25519Shared(dh, sk, pk) {
			return false
		}
		x25519Public(pub, sk)
		return true
	}
	var p extPoint
	tab.mult(&p, sk)
	s, err := edwards25519.NewScalar().SetBytesWithClamping(sk[:])
	if err != nil {
		panic("hpke: clamping a 32-byte scalar: " + err.Error()) // cannot happen: 32 bytes
	}
	_, y2, z2, _ := new(edwards25519.Point).ScalarBaseMult(s).ExtendedCoordinates()
	var d1, d2, inv, u field.Element
	d1.Subtract(&p.Z, &p.Y) // zero for the identity: then so is inv, and dh
	d2.Subtract(z2, y2)     // never zero: clamp(sk)·B is not the identity
	inv.Invert(inv.Multiply(&d1, &d2))
	u.Add(&p.Z, &p.Y)
	u.Multiply(u.Multiply(&u, &d2), &inv)
	copy(dh[:], u.Bytes())
	if isZero(dh) {
		return false
	}
	u.Add(z2, y2)
	u.Multiply(u.Multiply(&u, &d1), &inv)
	copy(pub[:], u.Bytes())
	return true
}

func isZero(b *[x25519Size]byte) bool {
	var zero [x25519Size]byte
	return subtle.ConstantTimeCompare(b[:], zero[:]) == 1
}

// newFixedTable maps u to its Edwards point (y = (u−1)/(u+1), RFC 7748
// §4.1; either sign of x gives the same u after multiplication) and
// tabulates its multiples. The point is public: this part need not be
// constant time.
func newFixedTable(pk *[x25519Size]byte) *fixedTable {
	var u, one, num, den, y field.Element
	if _, err := u.SetBytes(pk[:]); err != nil { // ignores the top bit, reduces mod p (RFC 7748 §5)
		return nil
	}
	one.One()
	den.Add(&u, &one)
	if den.Equal(new(field.Element)) == 1 {
		return nil // u = -1
	}
	y.Multiply(num.Subtract(&u, &one), den.Invert(&den))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes()) // sign bit 0
	if err != nil {
		return nil // not on the curve: a point of the twist
	}
	// Multiples in extended coordinates, then one batched inversion of
	// every Z (Montgomery's trick) for the affine forms.
	var ext [32][8]edwards25519.Point
	base := new(edwards25519.Point).Set(p)
	for i := range ext {
		ext[i][0].Set(base)
		for j := 1; j < 8; j++ {
			ext[i][j].Add(&ext[i][j-1], base)
		}
		for range 8 {
			base.Add(base, base)
		}
	}
	var zs, prefix [32 * 8]field.Element
	var xs, ys, ts [32 * 8]*field.Element
	acc := new(field.Element).One()
	for n := range zs {
		x, y, z, t := ext[n/8][n%8].ExtendedCoordinates()
		xs[n], ys[n], ts[n] = x, y, t
		zs[n].Set(z)
		prefix[n].Set(acc)
		acc.Multiply(acc, z)
	}
	inv := new(field.Element).Invert(acc) // no Z is zero: the formulas are complete
	tab := new(fixedTable)
	d2 := edD2()
	for n := len(zs) - 1; n >= 0; n-- {
		var zinv, x, y field.Element
		zinv.Multiply(inv, &prefix[n])
		inv.Multiply(inv, &zs[n])
		x.Multiply(xs[n], &zinv)
		y.Multiply(ys[n], &zinv)
		e := &tab[n/8][n%8]
		e.ypx.Add(&y, &x)
		e.ymx.Subtract(&y, &x)
		e.xy2d.Multiply(d2, e.xy2d.Multiply(ts[n], &zinv))
	}
	return tab
}

// extPoint is a point in extended coordinates: x = X/Z, y = Y/Z, XY = ZT.
type extPoint struct{ X, Y, Z, T field.Element }

// addNiels sets p to p + q (the unified addition of Hisil, Wong, Carter
// and Dawson, 2008, with Z2 = 1 and a = -1; complete on this curve).
func (p *extPoint) addNiels(q *niels) {
	var a, b, c, d, t field.Element
	a.Multiply(t.Subtract(&p.Y, &p.X), &q.ymx)
	b.Multiply(t.Add(&p.Y, &p.X), &q.ypx)
	c.Multiply(&p.T, &q.xy2d)
	d.Add(&p.Z, &p.Z)
	var e, f, g, h field.Element
	e.Subtract(&b, &a)
	f.Subtract(&d, &c)
	g.Add(&d, &c)
	h.Add(&b, &a)
	p.X.Multiply(&e, &f)
	p.Y.Multiply(&g, &h)
	p.T.Multiply(&e, &h)
	p.Z.Multiply(&f, &g)
}

// double sets p to 2p (dbl-2008-hwcd with a = -1).
func (p *extPoint) double() {
	var a, b, c, e, f, g, h, t field.Element
	a.Square(&p.X)
	b.Square(&p.Y)
	c.Square(&p.Z)
	c.Add(&c, &c)
	e.Subtract(e.Subtract(t.Square(t.Add(&p.X, &p.Y)), &a), &b)
	g.Subtract(&b, &a)
	f.Subtract(&g, &c)
	h.Negate(h.Add(&a, &b))
	p.X.Multiply(&e, &f)
	p.Y.Multiply(&g, &h)
	p.T.Multiply(&e, &h)
	p.Z.Multiply(&f, &g)
}

// selectDigit sets q to d·row[0] for a digit d in [-8, 8], in constant
// time: every entry is read, the one wanted kept by a mask.
func selectDigit(q *niels, row *[8]niels, d int8) {
	neg := int(uint8(d) >> 7)
	mask := d >> 7
	abs := int32((d ^ mask) - mask)
	q.ypx.One()
	q.ymx.One()
	q.xy2d.Zero()
	for j := range row {
		cond := subtle.ConstantTimeEq(abs, int32(j+1))
		q.ypx.Select(&row[j].ypx, &q.ypx, cond)
		q.ymx.Select(&row[j].ymx, &q.ymx, cond)
		q.xy2d.Select(&row[j].xy2d, &q.xy2d, cond)
	}
	// −(x, y) = (−x, y): swap y+x and y−x, negate 2dxy.
	q.ypx.Swap(&q.ymx, neg)
	var n field.Element
	n.Negate(&q.xy2d)
	q.xy2d.Select(&n, &q.xy2d, neg)
}

// mult sets p to clamp(sk)·P.
func (t *fixedTable) mult(p *extPoint, sk *[x25519Size]byte) {
	k := *sk
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64
	// Signed radix-16 digits: k = Σ e[i]·16^i, e[i] in [-8, 8).
	var e [64]int8
	for i, b := range k {
		e[2*i] = int8(b & 15)
		e[2*i+1] = int8(b >> 4)
	}
	var carry int8
	for i := range 63 {
		e[i] += carry
		carry = (e[i] + 8) >> 4
		e[i] -= carry << 4
	}
	e[63] += carry // at most 8: the top bit of k is clear
	p.X.Zero()
	p.Y.One()
	p.Z.One()
	p.T.Zero()
	var q niels
	for i := range t {
		selectDigit(&q, &t[i], e[2*i+1])
		p.addNiels(&q)
	}
	p.double()
	p.double()
	p.double()
	p.double()
	for i := range t {
		selectDigit(&q, &t[i], e[2*i])
		p.addNiels(&q)
	}
}

package hpke

import (
	"bytes"
	stdhkdf "crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/hpke"
)

// fastVector is a base-mode test vector of RFC 9180 for DHKEM(X25519,
// HKDF-SHA256) and HKDF-SHA256 (Appendix A.1.1 for AES-128-GCM, A.2.1 for
// ChaCha20Poly1305; the AES-256-GCM one is from the RFC's full vector set):
// the info is that of every vector, "Ode on a Grecian Urn", the plaintext
// "Beauty is truth, truth beauty", the AAD "Count-SEQ".
type fastVector struct {
	aead           AEAD
	skEm, skRm     string
	pkRm, enc      string
	exporterSecret string
	cts            map[uint64]string // ciphertext by sequence number
	exports        [3]string         // of the contexts "", 00 and "TestContext"
}

var fastVectors = []fastVector{{
	aead:           AEADAES128GCM,
	skEm:           "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
	skRm:           "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
	pkRm:           "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
	enc:            "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
	exporterSecret: "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8",
	cts: map[uint64]string{
		0:   "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
		1:   "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84",
		255: "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a",
		256: "957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3fbeda97d2e0e1aba483a2df9f2",
	},
	exports: [3]string{
		"3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee",
		"2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5",
		"e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931",
	},
}, {
	aead:           AEADAES256GCM,
	skEm:           "179d4b53b6365c45b600c4163b61d95cbc2f4d9e36f1695558dce265ab8bab11",
	skRm:           "497b4502664cfea5d5af0b39934dac72242a74f8480451e1aee7d6a53320333d",
	pkRm:           "430f4b9859665145a6b1ba274024487bd66f03a2dd577d7753c68d7d7d00c00c",
	enc:            "6c93e09869df3402d7bf231bf540fadd35cd56be14f97178f0954db94b7fc256",
	exporterSecret: "86017151bbff6a1940e8abae2ac9e0e7032e33df1eaaecc02ca6259b130d62df",
	cts: map[uint64]string{
		0:   "e5d84cd531cfb583096e7cfa9641bd3079cf3a91cda813c52deb5f512be9931980a41de125a925cdad859d5b7a",
		1:   "2c43aff25343fdbff864506f0818b9d87df84ea01b1a2144d23b4d40c26bf655fdf197fe40297a8aebeed5cc2d",
		255: "f6ad1823eb0b932d04b6e23010eea64f1fe5edd0583dae5ba27ca6363f4ea104bd217331460ef4208040423641",
		256: "53624f4f9f173453b14e633b45390ff54cacaa4428d44baee1bff8133fab1ab3afe60f88e4634b525c54e92eda",
	},
	exports: [3]string{
		"ded6cffafaea6b812cbf3e241e88332adbc077aca81512914213810ee291770a",
		"04d3cb6cc116b28ffd22ad5bc276c60d31fec71ceb87ae24db811c64b7507339",
		"7c5ded445732c14fe09727d29b4251c0fd38455fe8440571e687f0886aac94d2",
	},
}, {
	aead:           AEADChaCha20Poly1305,
	skEm:           "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600",
	skRm:           "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb",
	pkRm:           "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a",
	enc:            "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a",
	exporterSecret: "a3b010d4994890e2c6968a36f64470d3c824c8f5029942feb11e7a74b2921922",
	cts: map[uint64]string{
		0:   "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
		1:   "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e85285337cc95ba5f59992dc98c",
		255: "18ab939d63ddec9f6ac2b60d61d36a7375d2070c9b683861110757062c52b8880a5f6b3936da9cd6c23ef2a95c",
		256: "7a4a13e9ef23978e2c520fd4d2e757514ae160cd0cd05e556ef692370ca53076214c0c40d4c728d6ed9e727a5b",
	},
	exports: [3]string{
		"4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e",
		"8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69",
		"5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53",
	},
}}

var (
	vectorInfo      = []byte("Ode on a Grecian Urn")
	vectorPlaintext = []byte("Beauty is truth, truth beauty")
	exportContexts  = [3][]byte{nil, {0}, []byte("TestContext")}
)

// The fast path reproduces RFC 9180's vectors on both sides: the
// encapsulated key from the ephemeral secret, every listed sequence
// number's ciphertext (the nonce's carry across bytes at 256 included),
// the exporter secret and exported values.
func TestFastPathVectors(t *testing.T) {
	for _, v := range fastVectors {
		s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: v.aead}
		t.Run(s.String(), func(t *testing.T) {
			if !fastSuite(s) {
				t.Fatal("not on the fast path")
			}
			var skE [x25519Size]byte
			var pkR x25519Key
			copy(skE[:], mustHex(t, v.skEm))
			copy(pkR.pk[:], mustHex(t, v.pkRm))
			enc, snd, err := newFastSender(s, &pkR, vectorInfo, &skE)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, mustHex(t, v.enc)) {
				t.Fatalf("enc = %x, want %s", enc, v.enc)
			}
			if !bytes.Equal(snd.exporter[:], mustHex(t, v.exporterSecret)) {
				t.Fatalf("exporter_secret = %x, want %s", snd.exporter, v.exporterSecret)
			}
			sk, pub, err := ParsePrivateKey(KEMX25519, mustHex(t, v.skRm))
			if err != nil || !bytes.Equal(pub, pkR.pk[:]) || sk.x == nil {
				t.Fatalf("skRm: public key %x, %v (fast pair %v)", pub, err, sk.x != nil)
			}
			rcv, err := newFastReceiver(s, sk.x, enc, vectorInfo)
			if err != nil {
				t.Fatal(err)
			}
			for seq, want := range v.cts {
				aad := fmt.Appendf(nil, "Count-%d", seq)
				snd.seq, rcv.seq = seq, seq
				ct, err := snd.seal(vectorPlaintext, aad)
				if err != nil || !bytes.Equal(ct, mustHex(t, want)) {
					t.Fatalf("seq %d: ct = %x (%v), want %s", seq, ct, err, want)
				}
				pt, err := rcv.open(ct, aad)
				if err != nil || !bytes.Equal(pt, vectorPlaintext) {
					t.Fatalf("seq %d: opened %q, %v", seq, pt, err)
				}
				if snd.seq != seq+1 || rcv.seq != seq+1 {
					t.Fatalf("seq %d: sequence numbers now %d and %d", seq, snd.seq, rcv.seq)
				}
			}
			for i, want := range v.exports {
				for name, c := range map[string]*keyContext{"sender": snd, "receiver": rcv} {
					if got := c.export(exportContexts[i], 32); !bytes.Equal(got, mustHex(t, want)) {
						t.Fatalf("%s export %d = %x, want %s", name, i, got, want)
					}
				}
			}
		})
	}
}

// x25519KeyPair is a random X25519 key pair, parsed as senders use it.
func x25519KeyPair(t *testing.T) (PrivateKey, PublicKey) {
	t.Helper()
	sk, pub, err := GenerateKeyPair(KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(KEMX25519, pub)
	if err != nil {
		t.Fatal(err)
	}
	return sk, pk
}

// sealOursOpenCircl seals pt with the package's sender (which must take the
// fast path) and checks that circl opens it; it returns both contexts.
func sealOursOpenCircl(t *testing.T, s Suite, sk PrivateKey, pk PublicKey, info, aad, pt []byte) (Sender, hpke.Opener) {
	t.Helper()
	enc, snd, err := NewSender(s, pk, info)
	if err != nil || snd.c == nil {
		t.Fatalf("sender: %v (fast %v)", err, snd.c != nil)
	}
	ct, err := snd.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := s.circl().NewReceiver(sk.k, info)
	if err != nil {
		t.Fatal(err)
	}
	opener, err := cr.Setup(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := opener.Open(ct, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("%v, info %q: circl opens %x, %v", s, info, got, err)
	}
	return snd, opener
}

// sealCirclOpenOurs is the other direction: circl seals, the package's
// receiver (on the fast path) opens.
func sealCirclOpenOurs(t *testing.T, s Suite, sk PrivateKey, pk PublicKey, info, aad, pt []byte) (Receiver, hpke.Sealer) {
	t.Helper()
	cs, err := s.circl().NewSender(pk.k, info)
	if err != nil {
		t.Fatal(err)
	}
	enc, sealer, err := cs.Setup(nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := sealer.Seal(pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(s, sk, enc, info)
	if err != nil || rcv.c == nil {
		t.Fatalf("receiver: %v (fast %v)", err, rcv.c != nil)
	}
	if got, err := rcv.Open(ct, aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("%v, info %q: opened %x, %v", s, info, got, err)
	}
	return rcv, sealer
}

// Random keys and messages agree with circl in both directions, for every
// AEAD and export lengths of one to several hash blocks, and through the
// package's API (which takes the fast path for these suites).
func TestFastPathAgreesWithCircl(t *testing.T) {
	for _, a := range []AEAD{AEADAES128GCM, AEADAES256GCM, AEADChaCha20Poly1305} {
		s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: a}
		t.Run(s.String(), func(t *testing.T) {
			for i := range 50 {
				sk, pk := x25519KeyPair(t)
				info := bytes.Repeat([]byte{byte(i)}, i*7) // past the stack buffer too
				aad := bytes.Repeat([]byte{0xaa}, i)
				pt := bytes.Repeat([]byte{byte(i + 1)}, 1+i*13)
				n := 1 + i*11 // exports up to 540 bytes: many HKDF blocks

				snd, opener := sealOursOpenCircl(t, s, sk, pk, info, aad, pt)
				if !bytes.Equal(snd.Export(info, n), opener.Export(info, uint(n))) {
					t.Fatalf("exports of %d bytes differ", n)
				}
				rcv, sealer := sealCirclOpenOurs(t, s, sk, pk, info, aad, pt)
				if !bytes.Equal(rcv.Export(nil, n), sealer.Export(nil, uint(n))) {
					t.Fatalf("exports of %d bytes differ", n)
				}
			}
		})
	}
}

// The fixed-base Edwards multiplication gives circl's X25519 public keys,
// for random secrets and for the extremes that clamping folds.
func TestX25519PublicMatchesLadder(t *testing.T) {
	secrets := [][x25519Size]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for range 200 {
		var sk [x25519Size]byte
		_, _ = rand.Read(sk[:])
		secrets = append(secrets, sk)
	}
	for _, sk := range secrets {
		var got [x25519Size]byte
		var want x25519.Key
		x25519Public(&got, &sk)
		x25519.KeyGen(&want, (*x25519.Key)(&sk))
		if got != want {
			t.Fatalf("secret %x: public key %x, the ladder says %x", sk, got, want)
		}
	}
}

// An encapsulated key of low order makes the shared secret zero, which
// Decap refuses (RFC 9180 §7.1.4) as circl does; a ciphertext that does
// not authenticate fails without using up its sequence number.
func TestFastPathRefusals(t *testing.T) {
	s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: AEADAES128GCM}
	sk, pub, err := GenerateKeyPair(KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []byte{0, 1} {
		enc := make([]byte, x25519Size)
		enc[0] = u
		if _, err := NewReceiver(s, sk, enc, nil); err == nil {
			t.Fatalf("accepted the low-order encapsulated key u=%d", u)
		}
		if _, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().Decapsulate(sk.k, enc); err == nil {
			t.Fatalf("circl accepted u=%d: the test's premise is wrong", u)
		}
		pk, err := ParsePublicKey(KEMX25519, enc)
		if err != nil {
			continue // refused even earlier: fine
		}
		if _, _, err := NewSender(s, pk, nil); err == nil {
			t.Fatalf("sealed to the low-order public key u=%d", u)
		}
	}
	pk, err := ParsePublicKey(KEMX25519, pub)
	if err != nil {
		t.Fatal(err)
	}
	enc, snd, err := NewSender(s, pk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := snd.Seal([]byte("query"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(s, sk, enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(ct)
	bad[0] ^= 1
	if _, err := rcv.Open(bad, nil); err == nil {
		t.Fatal("opened a tampered ciphertext")
	}
	if pt, err := rcv.Open(ct, nil); err != nil || string(pt) != "query" {
		t.Fatalf("after a failed open: %q, %v", pt, err)
	}
	snd.c.seq = ^uint64(0)
	if _, err := snd.Seal(nil, nil); err == nil {
		t.Fatal("sealed past the last sequence number")
	}
}

// Extract and Expand of HKDF-SHA256 are the standard library's HKDF, for
// salts and infos shorter and longer than a block and the stack buffers.
func TestHKDFSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 190, 191, 192, 193, 255, 256, 257, 1000} {
		salt := bytes.Repeat([]byte{byte(n)}, n)
		ikm := bytes.Repeat([]byte{byte(n + 1)}, n/2+1)
		prk, err := stdhkdf.Extract(sha256.New, ikm, salt)
		if err != nil {
			t.Fatal(err)
		}
		if got := Extract(KDFHKDFSHA256, salt, ikm); !bytes.Equal(got, prk) {
			t.Fatalf("salt of %d bytes: Extract %x, want %x", n, got, prk)
		}
		for _, l := range []int{1, 16, 32, 33, 100, 255 * 32} {
			want, err := stdhkdf.Expand(sha256.New, prk, string(salt), l)
			if err != nil {
				t.Fatal(err)
			}
			if got := Expand(KDFHKDFSHA256, prk, salt, l); !bytes.Equal(got, want) {
				t.Fatalf("info of %d bytes, %d out: Expand differs", n, l)
			}
		}
	}
}

// A key caches the part of the key schedule fixed by the suite and the
// info: using one key with other infos and suites, alternately, must give
// each its own schedule (circl, which caches nothing, opens and seals).
func TestScheduleCacheFollowsInfoAndSuite(t *testing.T) {
	sk, pk := x25519KeyPair(t)
	infos := [][]byte{[]byte("odoh query"), []byte("message/bhttp request"), nil}
	aeads := []AEAD{AEADAES128GCM, AEADChaCha20Poly1305}
	// Each info with one suite, then each suite with one info: consecutive
	// uses differ in the info alone, then in the suite alone.
	type use struct {
		a    AEAD
		info []byte
	}
	var uses []use
	for _, a := range aeads {
		for _, info := range infos {
			uses = append(uses, use{a, info})
		}
	}
	for _, info := range infos {
		for _, a := range aeads {
			uses = append(uses, use{a, info})
		}
	}
	for i, u := range uses {
		s := Suite{KEM: KEMX25519, KDF: KDFHKDFSHA256, AEAD: u.a}
		info := u.info
		pt := []byte(fmt.Sprintf("message %d", i))
		sealOursOpenCircl(t, s, sk, pk, info, nil, pt)
		sealCirclOpenOurs(t, s, sk, pk, info, nil, pt)
	}
}

// KeyNonce is Extract then two Expands, for every KDF, salts shorter and
// longer than a block and secrets past its one-block path.
func TestKeyNonce(t *testing.T) {
	for _, k := range []KDF{KDFHKDFSHA256, KDFHKDFSHA384, KDFHKDFSHA512} {
		for _, n := range []int{0, 16, 64, 65, 146, 300} {
			for _, m := range []int{16, 32, 64, 65, 100} {
				salt := bytes.Repeat([]byte{byte(n)}, n)
				ikm := bytes.Repeat([]byte{byte(m + 1)}, m)
				prk := Extract(k, salt, ikm)
				for _, kl := range []int{16, 32} {
					wantKey := Expand(k, prk, []byte("odoh key"), kl)
					wantNonce := Expand(k, prk, []byte("odoh nonce"), 12)
					key, nonce := make([]byte, kl), make([]byte, 12)
					KeyNonce(k, salt, ikm, "odoh key", "odoh nonce", key, nonce)
					if !bytes.Equal(key, wantKey) || !bytes.Equal(nonce, wantNonce) {
						t.Fatalf("%v, salt %d, ikm %d, Nk %d: key %x nonce %x, want %x %x", k, n, m, kl, key, nonce, wantKey, wantNonce)
					}
				}
			}
		}
	}
	// And the standard library's HKDF, so that the reference is not only
	// this package's Extract and Expand.
	salt, ikm := bytes.Repeat([]byte{7}, 146), bytes.Repeat([]byte{9}, 16)
	prk, err := stdhkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := stdhkdf.Expand(sha256.New, prk, "odoh nonce", 12)
	if err != nil {
		t.Fatal(err)
	}
	key, nonce := make([]byte, 16), make([]byte, 12)
	KeyNonce(KDFHKDFSHA256, salt, ikm, "odoh key", "odoh nonce", key, nonce)
	if !bytes.Equal(nonce, want) {
		t.Fatalf("nonce %x, want %x", nonce, want)
	}
}

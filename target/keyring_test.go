package target_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
	"github.com/odohd/odoh/target"
)

func TestKeyringRotation(t *testing.T) {
	clock := &fakeClock{}
	start := time.Unix(1_800_000_000, 0).Truncate(time.Hour)
	clock.Set(start.Add(45 * time.Minute))
	seed := bytes.Repeat([]byte{1}, odoh.SeedSize)
	k := newKeyring(t, seed, clock.Now)
	k0, err := k.Current()
	if err != nil {
		t.Fatal(err)
	}
	if _, maxAge, _ := k.Configs(); maxAge != 15*time.Minute {
		t.Errorf("max-age %v, want the 15 minutes left in the epoch", maxAge)
	}
	clock.Advance(time.Hour)
	k1, _ := k.Current()
	if bytes.Equal(k0.KeyID(), k1.KeyID()) {
		t.Fatal("no rotation")
	}
	if k.Lookup(k0.KeyID()) != k0 || k.Lookup(k1.KeyID()) != k1 {
		t.Error("current or previous key not accepted")
	}
	body, _, _ := k.Configs()
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil || len(cfgs) != 1 || !cfgs[0].Equal(k1.Config()) {
		t.Errorf("configs %v, want the current key's", cfgs)
	}
	clock.Advance(time.Hour)
	if k.Lookup(k0.KeyID()) != nil {
		t.Error("a key two epochs old is accepted")
	}
	// Going back in time (a clock step) rebuilds the same keys.
	clock.Set(start.Add(time.Minute))
	if k.Lookup(k0.KeyID()) == nil {
		t.Error("the seed did not give the same key again")
	}
}

// TestKeyringDerivation pins the documented derivation: a change breaks
// every fleet of replicas mid-rotation, so it must be deliberate.
func TestKeyringDerivation(t *testing.T) {
	seed := make([]byte, odoh.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	at := time.Unix(86400*20000+1, 0) // epoch 20000 of a daily rotation
	k, err := target.NewKeyring(target.KeyringConfig{Seed: seed, Period: 24 * time.Hour, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if k.Epoch() != 20000 {
		t.Fatalf("epoch %d", k.Epoch())
	}
	cur, _ := k.Current()
	const want = "88872f15e05dba10316e5250cb3ba308d614c86a370882ad0cde45d39e459b0d"
	if got := hex.EncodeToString(cur.KeyID()); got != want {
		t.Errorf("key ID %s, want %s", got, want)
	}
}

func TestKeyringRandomKeysRotate(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(time.Unix(1_800_000_000, 0))
	a := newKeyring(t, nil, clock.Now)
	b := newKeyring(t, nil, clock.Now)
	ka, _ := a.Current()
	kb, _ := b.Current()
	if bytes.Equal(ka.KeyID(), kb.KeyID()) {
		t.Error("two random keyrings share a key")
	}
	clock.Advance(time.Hour)
	if k, _ := a.Current(); bytes.Equal(k.KeyID(), ka.KeyID()) {
		t.Error("random keys do not rotate")
	}
	if a.Lookup(ka.KeyID()) != ka {
		t.Error("previous random key not accepted")
	}
	clock.Advance(time.Hour)
	if a.Lookup(ka.KeyID()) != nil {
		t.Error("old random key still accepted")
	}
}

func TestKeyringSetSeed(t *testing.T) {
	k := newKeyring(t, bytes.Repeat([]byte{1}, odoh.SeedSize), nil)
	before, _ := k.Current()
	if err := k.SetSeed([]byte("short")); err == nil {
		t.Fatal("short seed accepted")
	}
	if after, _ := k.Current(); after != before {
		t.Error("a bad seed replaced the keys")
	}
	if err := k.SetSeed(bytes.Repeat([]byte{2}, odoh.SeedSize)); err != nil {
		t.Fatal(err)
	}
	if after, _ := k.Current(); bytes.Equal(after.KeyID(), before.KeyID()) {
		t.Error("a new seed kept the keys")
	}
	if _, err := target.NewKeyring(target.KeyringConfig{Period: time.Millisecond}); err == nil {
		t.Error("a 1ms period accepted")
	}
}

// TestKeyringMinPeriod: proxies and clients keep configs at least 10 s, so
// a period shorter than a minute would let cached configs outlive their
// keys: refused.
func TestKeyringMinPeriod(t *testing.T) {
	for _, tc := range []struct {
		period time.Duration
		ok     bool
	}{
		{10 * time.Second, false},
		{time.Minute - time.Second, false},
		{time.Minute, true},
	} {
		_, err := target.NewKeyring(target.KeyringConfig{Period: tc.period})
		if (err == nil) != tc.ok {
			t.Errorf("period %v: error %v, want accepted %v", tc.period, err, tc.ok)
		}
	}
}

func TestKeyringConcurrentLookups(t *testing.T) {
	clock := &fakeClock{}
	clock.Set(time.Unix(1_800_000_000, 0))
	seed := bytes.Repeat([]byte{3}, odoh.SeedSize)
	k := newKeyring(t, seed, clock.Now)
	// In each round the clock stands still while four goroutines race to
	// rebuild the epoch's keys (every third round crosses an epoch) and
	// look their key up: each must get the key a fresh keyring derives at
	// that time, and find it again by its key ID.
	for round := range 60 {
		at := clock.Now()
		want, err := newKeyring(t, seed, func() time.Time { return at }).Current()
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				<-start
				cur, err := k.Current()
				if err != nil {
					t.Error(err)
					return
				}
				if !cur.Config().Equal(want.Config()) {
					t.Errorf("round %d: current key %v, want %v", round, cur.Config(), want.Config())
				}
				if got := k.Lookup(cur.KeyID()); got == nil || !got.Config().Equal(cur.Config()) {
					t.Errorf("round %d: the current key's ID looks up %v", round, got)
				}
			})
		}
		close(start)
		wg.Wait()
		clock.Advance(20 * time.Minute)
	}
}

// TestKeyringAcceptsNextEpoch: a replica whose clock runs ahead publishes
// the next epoch's config first; a replica still in the current epoch
// accepts its key (clock skew must not cost a 401 at every rotation), but
// not the key two epochs ahead, and keeps publishing its current config.
func TestKeyringAcceptsNextEpoch(t *testing.T) {
	start := time.Unix(1_800_000_000, 0).Truncate(time.Hour)
	seed := bytes.Repeat([]byte{4}, odoh.SeedSize)
	at := func(d time.Duration) *target.Keyring {
		return newKeyring(t, seed, func() time.Time { return start.Add(d) })
	}
	slow := at(59*time.Minute + 58*time.Second) // epoch e, 2 s before its end
	ahead, _ := at(time.Hour).Current()         // epoch e+1
	twoAhead, _ := at(2 * time.Hour).Current()  // epoch e+2
	cur, _ := slow.Current()
	if k := slow.Lookup(ahead.KeyID()); k == nil || !k.Config().Equal(ahead.Config()) {
		t.Error("the next epoch's key is refused")
	}
	if slow.Lookup(twoAhead.KeyID()) != nil {
		t.Error("a key two epochs ahead is accepted")
	}
	if slow.Lookup(cur.KeyID()) != cur {
		t.Error("the current key is refused")
	}
	body, maxAge, _ := slow.Configs()
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil || len(cfgs) != 1 || !cfgs[0].Equal(cur.Config()) {
		t.Errorf("configs %v, want only the current key's", cfgs)
	}
	if maxAge != 2*time.Second {
		t.Errorf("max-age %v, want the 2 s left in the epoch", maxAge)
	}

	// Random keys: none is made ahead, so a key no keyring published yet
	// cannot be accepted; a next key made before a clock step back is.
	clock := &fakeClock{}
	clock.Set(start)
	r := newKeyring(t, nil, clock.Now)
	r0, _ := r.Current()
	clock.Advance(time.Hour)
	r1, _ := r.Current()
	clock.Set(start)
	if r.Lookup(r1.KeyID()) != r1 || r.Lookup(r0.KeyID()) != r0 {
		t.Error("after a clock step back, the random key already made for the next epoch is refused")
	}
}

// The OHTTP key of an epoch has the epoch's low byte as its ID, derives
// from the seed apart from the ODoH key, and replicas agree on it.
func TestKeyringOHTTPKeys(t *testing.T) {
	seed := bytes.Repeat([]byte{5}, odoh.SeedSize)
	at := time.Unix(3600*500_000+7, 0)
	now := func() time.Time { return at }
	a, b := newKeyring(t, seed, now), newKeyring(t, seed, now)
	other := newKeyring(t, bytes.Repeat([]byte{6}, odoh.SeedSize), now)
	parse := func(k *target.Keyring) *ohttp.KeyConfig {
		t.Helper()
		body, maxAge, err := k.OHTTPConfigs()
		if err != nil {
			t.Fatal(err)
		}
		if _, odohAge, _ := k.Configs(); maxAge != odohAge || maxAge != time.Hour-7*time.Second {
			t.Fatalf("OHTTP max-age %v, ODoH %v, want the time left in the epoch", maxAge, odohAge)
		}
		cfgs, err := ohttp.ParseKeyConfigs(body)
		if err != nil || len(cfgs) != 1 {
			t.Fatalf("%v, %v", cfgs, err)
		}
		return cfgs[0]
	}
	ca, cb, co := parse(a), parse(b), parse(other)
	if !ca.Equal(cb) || ca.Equal(co) {
		t.Fatal("OHTTP keys do not follow the seed")
	}
	if ca.KeyID() != uint8(a.Epoch()) || a.Epoch() != 500_000 {
		t.Fatalf("key ID %d in epoch %d", ca.KeyID(), a.Epoch())
	}
	cur, _ := a.Current()
	if bytes.Equal(cur.Config().PublicKey(), ca.PublicKey()) {
		t.Fatal("the ODoH and OHTTP keys of an epoch are the same")
	}
	if a.LookupOHTTP(ca.KeyID()) == nil || a.LookupOHTTP(ca.KeyID()-1) == nil || a.LookupOHTTP(ca.KeyID()+1) == nil {
		t.Fatal("current, previous or next OHTTP key not accepted")
	}
	if a.LookupOHTTP(ca.KeyID()+2) != nil || a.LookupOHTTP(ca.KeyID()-2) != nil {
		t.Fatal("an OHTTP key two epochs away is accepted")
	}
	// The documented derivation, computed apart with the standard library
	// (crypto/hkdf, crypto/hpke): a change of it breaks every fleet of
	// replicas mid-rotation, so it must be deliberate.
	info := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint64([]byte("odoh-target ohttp epoch"), 500_000), 0x0020)
	ikm, err := hkdf.Key(sha256.New, seed, nil, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	if want := sk.PublicKey().Bytes(); !bytes.Equal(ca.PublicKey(), want) {
		t.Errorf("public key %x, want %x", ca.PublicKey(), want)
	}
}

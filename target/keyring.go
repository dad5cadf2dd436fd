package target

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// DefaultRotationPeriod is the key lifetime RFC 9230 §5 recommends: daily.
const DefaultRotationPeriod = 24 * time.Hour

// MinRotationPeriod is the shortest rotation period a Keyring accepts.
// Proxies and clients cache configs for at least 10 seconds whatever their
// max-age says; with periods of that order a cached config would outlive
// its key's acceptance, so a minute is the floor.
const MinRotationPeriod = time.Minute

// epochInfo is the HKDF info prefix of a per-epoch key seed.
const epochInfo = "odoh-target epoch"

// Keyring holds the target's keys and rotates them.
//
// Time is cut into epochs of Period: epoch = floor(unix time / Period).
// The key of epoch e is
//
//	ikm  = HKDF-SHA256(secret = seed, salt = "",
//	                   info = "odoh-target epoch" ‖ u64be(e) ‖ u16be(kem) ‖ u16be(kdf) ‖ u16be(aead), L = 32)
//	key  = odoh.DeriveKey(suite, ikm)         // RFC 9180 DeriveKeyPair
//
// and its Oblivious HTTP gateway key (RFC 9458) is
//
//	ikm  = HKDF-SHA256(secret = seed, salt = "",
//	                   info = "odoh-target ohttp epoch" ‖ u64be(e) ‖ u16be(kem), L = 32)
//	key  = ohttp.DeriveKey(key ID = e mod 256, OHTTPKEM, ikm, ohttp.DefaultSymmetric()...)
//
// so every replica with the same seed, period and suite holds the same key
// in the same epoch. The Keyring publishes the current epoch's config and
// accepts queries for the previous, the current and the next epoch; other
// keys get 401. Accepting the next key absorbs clock skew between replicas:
// one running a little ahead publishes epoch e+1's config first, and its
// clients' queries may reach a replica still in epoch e. Without a seed,
// each epoch's key is random (development only; replicas then disagree),
// rotation still happens, and a next key is accepted only if this Keyring
// already made it (after a clock step back).
//
// The same rules hold for the OHTTP keys: the current epoch's key
// configuration is published (OHTTPConfigs), the three epochs' keys are
// accepted (LookupOHTTP); their key IDs, one byte, differ for any three
// consecutive epochs.
//
// Configs are served with max-age = the time left in the current epoch: a
// client that caches them that long uses a key that stays accepted for at
// least one more full epoch, so the cached config never outlives acceptance.
//
// Lookup is the hot path: an atomic load of an immutable snapshot plus a
// clock read; the snapshot is rebuilt (under a mutex) only when the epoch
// changes. A Keyring is safe for concurrent use.
type Keyring struct {
	suite  odoh.Suite
	period time.Duration
	now    func() time.Time

	mu   sync.Mutex // serialises rebuilds and seed changes
	seed []byte     // nil: random keys; guarded by mu
	// random keeps the random keys of recent epochs; guarded by mu.
	random map[int64]*epochKeys

	snap atomic.Pointer[keySnapshot]
}

// KeyringConfig configures NewKeyring.
type KeyringConfig struct {
	// Seed is the secret of odoh.SeedSize bytes the keys derive from; nil
	// means random keys per epoch (development). It is copied.
	Seed []byte
	// Period is the rotation period; zero means DefaultRotationPeriod.
	Period time.Duration
	// Suite is the HPKE suite of the keys; the zero value means
	// odoh.DefaultSuite().
	Suite odoh.Suite
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// keySnapshot is an immutable view of one epoch.
type keySnapshot struct {
	epoch        int64
	current      *epochKeys
	previous     *epochKeys
	next         *epochKeys // nil for random keys not made yet
	configs      []byte     // ObliviousDoHConfigs with the current config
	ohttpConfigs []byte     // application/ohttp-keys with the current key configuration
	end          time.Time  // end of the epoch
}

// epochKeys are the keys of one epoch: ODoH's, and Oblivious HTTP's (see
// keyring_ohttp.go), derived apart so that neither protocol's key is valid
// for the other (RFC 9458 §6.4).
type epochKeys struct {
	odoh  *odoh.PrivateKey
	ohttp *ohttp.PrivateKey
}

// NewKeyring returns a Keyring with the keys of the current epoch ready.
func NewKeyring(c KeyringConfig) (*Keyring, error) {
	k := &Keyring{suite: c.Suite, period: c.Period, now: c.Now}
	if k.suite == (odoh.Suite{}) {
		k.suite = odoh.DefaultSuite()
	}
	if !k.suite.Supported() {
		return nil, fmt.Errorf("keyring: suite %v: %w", k.suite, odoh.ErrUnsupported)
	}
	if k.period == 0 {
		k.period = DefaultRotationPeriod
	}
	if k.period < MinRotationPeriod {
		return nil, fmt.Errorf("keyring: rotation period %v is shorter than %v", k.period, MinRotationPeriod)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if err := k.SetSeed(c.Seed); err != nil {
		return nil, err
	}
	return k, nil
}

// SetSeed replaces the seed (nil: random keys) and rebuilds the keys at
// once. On error the Keyring keeps its previous seed and keys. After a change
// of seed, queries made with configs of the old seed get 401 and clients
// refetch.
func (k *Keyring) SetSeed(seed []byte) error {
	if seed != nil && len(seed) != odoh.SeedSize {
		return fmt.Errorf("keyring: seed is %d bytes, want %d", len(seed), odoh.SeedSize)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, oldRandom := k.seed, k.random
	if seed != nil {
		k.seed = bytes.Clone(seed)
	} else {
		k.seed = nil
	}
	k.random = make(map[int64]*epochKeys)
	s, err := k.build(k.epochOf(k.now()), nil)
	if err != nil {
		k.seed, k.random = old, oldRandom
		return err
	}
	k.snap.Store(s)
	return nil
}

// epochOf returns floor(t / period) in Unix time.
func (k *Keyring) epochOf(t time.Time) int64 {
	n, p := t.UnixNano(), int64(k.period)
	e := n / p
	if n%p < 0 {
		e--
	}
	return e
}

// snapshot returns the snapshot for now, rebuilding it if the epoch moved.
func (k *Keyring) snapshot() (*keySnapshot, error) {
	now := k.now()
	s := k.snap.Load()
	if s != nil && !now.Before(s.end.Add(-k.period)) && now.Before(s.end) {
		return s, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.epochOf(now)
	if s = k.snap.Load(); s != nil && s.epoch == e {
		return s, nil
	}
	s, err := k.build(e, s)
	if err != nil {
		return nil, err
	}
	k.snap.Store(s)
	return s, nil
}

// build makes the snapshot of epoch e, taking the keys it already has
// from old (the snapshot of the same seed, or nil). k.mu must be held.
func (k *Keyring) build(e int64, old *keySnapshot) (*keySnapshot, error) {
	var cur, prev, next *epochKeys
	var err error
	if old != nil && old.epoch == e-1 && old.next != nil {
		cur = old.next // spare a derivation at rotation
	} else if cur, err = k.key(e); err != nil {
		return nil, err
	}
	if old != nil && old.epoch == e-1 {
		prev = old.current
	} else if prev, err = k.key(e - 1); err != nil {
		return nil, err
	}
	if k.seed != nil {
		if next, err = k.key(e + 1); err != nil {
			return nil, err
		}
	} else {
		next = k.random[e+1] // never made ahead: it would be nobody's
	}
	body, err := odoh.MarshalConfigs(cur.odoh.Config())
	if err != nil {
		return nil, fmt.Errorf("keyring: marshalling configs: %w", err)
	}
	ohttpBody, err := ohttp.MarshalKeyConfigs(cur.ohttp.Config())
	if err != nil {
		return nil, fmt.Errorf("keyring: marshalling OHTTP key configurations: %w", err)
	}
	if k.seed == nil {
		// Forget random keys that can no longer be accepted.
		for old := range k.random {
			if old < e-1 || old > e+1 {
				delete(k.random, old)
			}
		}
	}
	return &keySnapshot{
		epoch:        e,
		current:      cur,
		previous:     prev,
		next:         next,
		configs:      body,
		ohttpConfigs: ohttpBody,
		end:          time.Unix(0, (e+1)*int64(k.period)),
	}, nil
}

// key returns the keys of epoch e. k.mu must be held.
func (k *Keyring) key(e int64) (*epochKeys, error) {
	if k.seed == nil {
		if keys, ok := k.random[e]; ok {
			return keys, nil
		}
		o, err := odoh.GenerateKey(k.suite)
		if err != nil {
			return nil, fmt.Errorf("keyring: generating key: %w", err)
		}
		h, err := ohttp.GenerateKey(ohttpKeyID(e), OHTTPKEM)
		if err != nil {
			return nil, fmt.Errorf("keyring: generating OHTTP key: %w", err)
		}
		keys := &epochKeys{odoh: o, ohttp: h}
		k.random[e] = keys
		return keys, nil
	}
	ikm, err := epochSeed(k.seed, epochInfo, e, uint16(k.suite.KEM), uint16(k.suite.KDF), uint16(k.suite.AEAD))
	if err != nil {
		return nil, err
	}
	o, err := odoh.DeriveKey(k.suite, ikm)
	if err != nil {
		return nil, fmt.Errorf("keyring: deriving key: %w", err)
	}
	h, err := deriveOHTTPKey(k.seed, e)
	if err != nil {
		return nil, err
	}
	return &epochKeys{odoh: o, ohttp: h}, nil
}

// epochSeed is the per-epoch input of a key derivation (see Keyring):
// HKDF-SHA256 of the seed with info = label ‖ u64be(e) ‖ u16be(id)….
func epochSeed(seed []byte, label string, e int64, ids ...uint16) ([]byte, error) {
	info := make([]byte, 0, len(label)+8+2*len(ids))
	info = append(info, label...)
	info = binary.BigEndian.AppendUint64(info, uint64(e))
	for _, id := range ids {
		info = binary.BigEndian.AppendUint16(info, id)
	}
	ikm, err := hkdf.Key(sha256.New, seed, nil, string(info), odoh.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("keyring: deriving epoch seed: %w", err)
	}
	return ikm, nil
}

// errNoKeys is returned when the keys of the epoch cannot be made.
var errNoKeys = errors.New("keyring: no keys")

// Lookup returns the private key whose key ID is keyID if it belongs to
// the current, the previous or the next epoch, and nil otherwise (answer
// 401).
func (k *Keyring) Lookup(keyID []byte) *odoh.PrivateKey {
	s, err := k.snapshot()
	if err != nil {
		return nil
	}
	if bytes.Equal(keyID, s.current.odoh.KeyID()) {
		return s.current.odoh
	}
	if bytes.Equal(keyID, s.previous.odoh.KeyID()) {
		return s.previous.odoh
	}
	if s.next != nil && bytes.Equal(keyID, s.next.odoh.KeyID()) {
		return s.next.odoh
	}
	return nil
}

// Configs returns the body of /.well-known/odohconfigs (the current
// epoch's config) and how long it may be cached: the time left in the
// current epoch, rounded down to whole seconds.
func (k *Keyring) Configs() (body []byte, maxAge time.Duration, err error) {
	s, err := k.snapshot()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errNoKeys, err)
	}
	return s.configs, k.maxAge(s), nil
}

// maxAge is how long the configs of snapshot s may be cached: the time
// left in its epoch, rounded down to whole seconds.
func (k *Keyring) maxAge(s *keySnapshot) time.Duration {
	return max(s.end.Sub(k.now()).Truncate(time.Second), 0)
}

// Current returns the key of the current epoch.
func (k *Keyring) Current() (*odoh.PrivateKey, error) {
	s, err := k.snapshot()
	if err != nil {
		return nil, err
	}
	return s.current.odoh, nil
}

// Epoch returns the current epoch number (floor(unix time / period)).
func (k *Keyring) Epoch() int64 {
	return k.epochOf(k.now())
}

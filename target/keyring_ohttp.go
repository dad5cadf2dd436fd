package target

import (
	"fmt"
	"time"

	"github.com/odohd/odoh/odoh"
	"github.com/odohd/odoh/ohttp"
)

// OHTTPKEM is the KEM of the gateway's Oblivious HTTP keys (the one
// Firefox implements); they offer ohttp.DefaultSymmetric().
const OHTTPKEM = odoh.KEMX25519

// ohttpEpochInfo is the HKDF info prefix of a per-epoch OHTTP key seed:
// not ODoH's, so that the two protocols never share a key.
const ohttpEpochInfo = "odoh-target ohttp epoch"

// ohttpKeyID is the key ID of epoch e's OHTTP key: it changes with every
// epoch, and any three consecutive epochs have distinct IDs.
func ohttpKeyID(e int64) uint8 { return uint8(e) }

// deriveOHTTPKey derives epoch e's OHTTP key from the seed (see Keyring).
func deriveOHTTPKey(seed []byte, e int64) (*ohttp.PrivateKey, error) {
	ikm, err := epochSeed(seed, ohttpEpochInfo, e, uint16(OHTTPKEM))
	if err != nil {
		return nil, err
	}
	key, err := ohttp.DeriveKey(ohttpKeyID(e), OHTTPKEM, ikm)
	if err != nil {
		return nil, fmt.Errorf("keyring: deriving OHTTP key: %w", err)
	}
	return key, nil
}

// LookupOHTTP returns the OHTTP key whose key ID is keyID if it belongs
// to the current, the previous or the next epoch, and nil otherwise (the
// gateway answers with the ohttp-key problem, RFC 9458 §5.3).
func (k *Keyring) LookupOHTTP(keyID uint8) *ohttp.PrivateKey {
	s, err := k.snapshot()
	if err != nil {
		return nil
	}
	for _, keys := range [...]*epochKeys{s.current, s.previous, s.next} {
		if keys != nil && keys.ohttp.KeyID() == keyID {
			return keys.ohttp
		}
	}
	return nil
}

// OHTTPConfigs returns the body of the gateway's application/ohttp-keys
// (the current epoch's key configuration) and how long it may be cached,
// by the same rule as Configs.
func (k *Keyring) OHTTPConfigs() (body []byte, maxAge time.Duration, err error) {
	s, err := k.snapshot()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errNoKeys, err)
	}
	return s.ohttpConfigs, k.maxAge(s), nil
}

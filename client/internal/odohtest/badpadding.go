package odohtest

import (
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/hpke"
	"github.com/odohd/odoh/odoh"
)

// craftBadPadding answers the query body with a correctly encrypted response
// whose plaintext padding is non-zero (01 02 03). The odoh package cannot
// produce one (it always pads with zeros), so the target side of RFC 9230
// §6.2 is redone here with circl for the default suite.
func (t *Target) craftBadPadding(body, answer []byte) ([]byte, error) {
	t.mu.Lock()
	seed := t.seed
	t.mu.Unlock()
	m, err := odoh.ParseMessage(body)
	if err != nil {
		return nil, err
	}
	kem, kdf, aead := hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM
	_, sk := kem.Scheme().DeriveKeyPair(seed)
	rcv, err := hpke.NewSuite(kem, kdf, aead).NewReceiver(sk, []byte("odoh query"))
	if err != nil {
		return nil, err
	}
	nenc := kem.Scheme().CiphertextSize()
	if len(m.Encrypted) < nenc {
		return nil, fmt.Errorf("short query")
	}
	opener, err := rcv.Setup(m.Encrypted[:nenc])
	if err != nil {
		return nil, err
	}
	aadQ := make([]byte, 0, 3+len(m.KeyID))
	aadQ = append(aadQ, 0x01)
	aadQ = binary.BigEndian.AppendUint16(aadQ, uint16(len(m.KeyID)))
	aadQ = append(aadQ, m.KeyID...)
	qPlain, err := opener.Open(m.Encrypted[nenc:], aadQ)
	if err != nil {
		return nil, err
	}
	secret := opener.Export([]byte("odoh response"), aead.KeySize())
	nonce := make([]byte, 16)
	for i := range nonce {
		nonce[i] = byte(i + 1)
	}
	salt := append(append([]byte{}, qPlain...), 0, byte(len(nonce)))
	salt = append(salt, nonce...)
	prk := kdf.Extract(secret, salt)
	key := kdf.Expand(prk, []byte("odoh key"), aead.KeySize())
	iv := kdf.Expand(prk, []byte("odoh nonce"), 12)
	pad := []byte{1, 2, 3}
	rPlain := binary.BigEndian.AppendUint16(nil, uint16(len(answer)))
	rPlain = append(rPlain, answer...)
	rPlain = binary.BigEndian.AppendUint16(rPlain, uint16(len(pad)))
	rPlain = append(rPlain, pad...)
	a, err := aead.New(key)
	if err != nil {
		return nil, err
	}
	aadR := append([]byte{0x02, 0, byte(len(nonce))}, nonce...)
	ct := a.Seal(nil, iv, rPlain, aadR)
	return odoh.Message{Type: odoh.MessageTypeResponse, KeyID: nonce, Encrypted: ct}.MarshalBinary()
}

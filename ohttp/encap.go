package ohttp

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"

	"github.com/odohd/odoh/internal/hpke"
	"github.com/odohd/odoh/odoh"
)

// Labels of RFC 9458 §4.3 and §4.4: the HPKE info prefix of a request and
// the exporter context of the response secret.
const (
	requestLabel  = "message/bhttp request"
	responseLabel = "message/bhttp response"
)

// headerSize is the length of an Encapsulated Request's header: key ID,
// KEM, KDF and AEAD identifiers (RFC 9458 §4.1).
const headerSize = 7

// RequestHeader is the clear header of an Encapsulated Request: the key ID
// and suite the client chose.
type RequestHeader struct {
	KeyID uint8
	Suite odoh.Suite
}

// ParseRequestHeader reads the header of an Encapsulated Request, so that
// a gateway can pick the key it names before decapsulating.
func ParseRequestHeader(encRequest []byte) (RequestHeader, error) {
	if len(encRequest) < headerSize {
		return RequestHeader{}, malformed("encapsulated request is %d bytes, shorter than its header", len(encRequest))
	}
	return RequestHeader{
		KeyID: encRequest[0],
		Suite: odoh.Suite{
			KEM:  odoh.KEM(binary.BigEndian.Uint16(encRequest[1:])),
			KDF:  odoh.KDF(binary.BigEndian.Uint16(encRequest[3:])),
			AEAD: odoh.AEAD(binary.BigEndian.Uint16(encRequest[5:])),
		},
	}, nil
}

// requestInfo is "message/bhttp request" ‖ 0 ‖ hdr.
func requestInfo(hdr []byte) []byte {
	info := make([]byte, 0, len(requestLabel)+1+len(hdr))
	info = append(info, requestLabel...)
	info = append(info, 0)
	return append(info, hdr...)
}

// ClientContext is what a client keeps of an Encapsulated Request to open
// the response. It is safe for concurrent use.
type ClientContext struct {
	suite  odoh.Suite
	enc    []byte
	secret []byte
}

// EncapsulateRequest encrypts a request (a Binary HTTP message) to the
// gateway's key configuration with a fresh HPKE context (RFC 9458 §4.3),
// using the configuration's first supported symmetric pair. It returns
// the Encapsulated Request to POST to the relay and the context that
// opens the response.
func EncapsulateRequest(c *KeyConfig, request []byte) ([]byte, *ClientContext, error) {
	return encapsulateRequest(c, request, nil)
}

// encapsulateRequest is EncapsulateRequest with the ephemeral secret skE
// (nil: a random one), which the RFC 9458 example needs to be reproduced
// byte for byte.
func encapsulateRequest(c *KeyConfig, request, skE []byte) ([]byte, *ClientContext, error) {
	s := c.Suite()
	if !s.Supported() {
		return nil, nil, wrap(odoh.ErrUnsupported, "suite %v", s)
	}
	out := make([]byte, headerSize, headerSize+s.KEM.EncSize()+len(request)+s.AEAD.TagSize())
	out[0] = c.keyID
	binary.BigEndian.PutUint16(out[1:], uint16(s.KEM))
	binary.BigEndian.PutUint16(out[3:], uint16(s.KDF))
	binary.BigEndian.PutUint16(out[5:], uint16(s.AEAD))
	var enc []byte
	var snd hpke.Sender
	var err error
	if skE == nil {
		enc, snd, err = hpke.NewSender(s, c.pk, requestInfo(out))
	} else {
		enc, snd, err = hpke.NewSenderWithEphemeral(s, c.pk, requestInfo(out), skE)
	}
	if err != nil {
		return nil, nil, wrap(odoh.ErrEncrypt, "%v", err)
	}
	ct, err := snd.Seal(request, nil)
	if err != nil {
		return nil, nil, wrap(odoh.ErrEncrypt, "hpke seal: %v", err)
	}
	out = append(append(out, enc...), ct...)
	secret := snd.Export([]byte(responseLabel), s.AEAD.ResponseNonceSize())
	return out, &ClientContext{suite: s, enc: enc, secret: secret}, nil
}

// DecapsulateResponse decrypts an Encapsulated Response (RFC 9458 §4.4)
// and returns the response (a Binary HTTP message).
func (c *ClientContext) DecapsulateResponse(encResponse []byte) ([]byte, error) {
	nr := c.suite.AEAD.ResponseNonceSize()
	if len(encResponse) < nr+c.suite.AEAD.TagSize() {
		return nil, malformed("encapsulated response is %d bytes, shorter than a nonce and a tag", len(encResponse))
	}
	aead, nonce, err := responseAEAD(c.suite, c.secret, c.enc, encResponse[:nr])
	if err != nil {
		return nil, err
	}
	res, err := aead.Open(nil, nonce, encResponse[nr:], nil)
	if err != nil {
		return nil, wrap(odoh.ErrDecrypt, "response: %v", err)
	}
	return res, nil
}

// GatewayContext is what a gateway keeps of a decapsulated request to
// encapsulate its response. Use it for one response.
type GatewayContext struct {
	suite  odoh.Suite
	enc    []byte
	secret []byte
}

// DecapsulateRequest decrypts an Encapsulated Request (RFC 9458 §4.3) and
// returns the request (a Binary HTTP message) and the context that seals
// the response. A request for another key ID or KEM, or for symmetric
// algorithms the key does not offer, is an [odoh.ErrKeyMismatch] error; a
// request too short to hold an encapsulated key and a tag is
// [odoh.ErrMalformed]; a failed decryption is [odoh.ErrDecrypt].
func (k *PrivateKey) DecapsulateRequest(encRequest []byte) ([]byte, *GatewayContext, error) {
	h, err := ParseRequestHeader(encRequest)
	if err != nil {
		return nil, nil, err
	}
	c := k.config
	switch {
	case h.KeyID != c.keyID:
		return nil, nil, wrap(odoh.ErrKeyMismatch, "key ID %d is not %d", h.KeyID, c.keyID)
	case h.Suite.KEM != c.kem:
		return nil, nil, wrap(odoh.ErrKeyMismatch, "key %d is a %v key, not %v", c.keyID, c.kem, h.Suite.KEM)
	case !c.offers(h.Suite):
		return nil, nil, wrap(odoh.ErrKeyMismatch, "key %d does not offer %v/%v", c.keyID, h.Suite.KDF, h.Suite.AEAD)
	}
	s := h.Suite
	nenc := s.KEM.EncSize()
	if len(encRequest) < headerSize+nenc+s.AEAD.TagSize() {
		return nil, nil, malformed("encapsulated request is %d bytes, shorter than its header, an encapsulated key and a tag", len(encRequest))
	}
	enc := bytes.Clone(encRequest[headerSize : headerSize+nenc])
	rcv, err := hpke.NewReceiver(s, k.sk, enc, requestInfo(encRequest[:headerSize]))
	if err != nil {
		return nil, nil, wrap(odoh.ErrDecrypt, "%v", err)
	}
	req, err := rcv.Open(encRequest[headerSize+nenc:], nil)
	if err != nil {
		return nil, nil, wrap(odoh.ErrDecrypt, "request: %v", err)
	}
	secret := rcv.Export([]byte(responseLabel), s.AEAD.ResponseNonceSize())
	return req, &GatewayContext{suite: s, enc: enc, secret: secret}, nil
}

// EncapsulateResponse encrypts the response (a Binary HTTP message) to
// the client of the request (RFC 9458 §4.4) with a fresh random nonce.
func (g *GatewayContext) EncapsulateResponse(response []byte) ([]byte, error) {
	nonce := make([]byte, g.suite.AEAD.ResponseNonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, wrap(odoh.ErrEncrypt, "reading response nonce: %v", err)
	}
	return g.encapsulateResponse(nonce, response)
}

// encapsulateResponse is EncapsulateResponse with a given nonce, which the
// RFC 9458 example needs to be reproduced byte for byte.
func (g *GatewayContext) encapsulateResponse(responseNonce, response []byte) ([]byte, error) {
	aead, nonce, err := responseAEAD(g.suite, g.secret, g.enc, responseNonce)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(responseNonce), len(responseNonce)+len(response)+aead.Overhead())
	copy(out, responseNonce)
	return aead.Seal(out, nonce, response, nil), nil
}

// responseAEAD derives the response key and nonce of RFC 9458 §4.4:
// prk = Extract(enc ‖ response_nonce, secret), key = Expand(prk, "key",
// Nk), nonce = Expand(prk, "nonce", Nn).
func responseAEAD(s odoh.Suite, secret, enc, responseNonce []byte) (cipher.AEAD, []byte, error) {
	key, nonce := responseKeys(s, secret, enc, responseNonce)
	a, err := hpke.NewAEAD(s.AEAD, key)
	if err != nil {
		return nil, nil, wrap(odoh.ErrUnsupported, "%v", err)
	}
	return a, nonce, nil
}

func responseKeys(s odoh.Suite, secret, enc, responseNonce []byte) (key, nonce []byte) {
	salt := make([]byte, 0, len(enc)+len(responseNonce))
	salt = append(append(salt, enc...), responseNonce...)
	prk := hpke.Extract(s.KDF, salt, secret)
	return hpke.Expand(s.KDF, prk, []byte("key"), s.AEAD.KeySize()),
		hpke.Expand(s.KDF, prk, []byte("nonce"), s.AEAD.NonceSize())
}

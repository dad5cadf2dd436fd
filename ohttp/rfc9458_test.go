package ohttp

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/hpke"
	"github.com/odohd/odoh/odoh"
)

// RFC 9458 Appendix A, "Complete Example of a Request and Response".
var appendixA = struct {
	skR, keyConfig, request, skE, pkE, info, encRequest, response string
	secret, responseNonce, prk, key, nonce, encResponse           string
}{
	skR:       "3c168975674b2fa8e465970b79c8dcf09f1c741626480bd4c6162fc5b6a98e1a",
	keyConfig: "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003",
	request:   "00034745540568747470730b6578616d706c652e636f6d012f",
	skE:       "bc51d5e930bda26589890ac7032f70ad12e4ecb37abb1b65b1256c9c48999c73",
	pkE:       "4b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad19dec96c208b472",
	info:      "6d6573736167652f626874747020726571756573740001002000010001",
	encRequest: "010020000100014b28f881333e7c164ffc499ad9796f877f4e1051ee6d31bad1" +
		"9dec96c208b4726374e469135906992e1268c594d2a10c695d858c40a026e796" +
		"5e7d86b83dd440b2c0185204b4d63525",
	response:      "0140c8",
	secret:        "62d87a6ba569ee81014c2641f52bea36",
	responseNonce: "c789e7151fcba46158ca84b04464910d",
	prk:           "979aaeae066cf211ab407b31ae49767f344e1501e475c84e8aff547cc5a683db",
	key:           "5d0172a080e428b16d298c4ea0db620d",
	nonce:         "f6bf1aeb88d6df87007fa263",
	encResponse:   "c789e7151fcba46158ca84b04464910d86f9013e404feea014e7be4a441f234f857fbd",
}

func h(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendixAKey is the gateway key of the example: skR, key ID 1, with the
// two symmetric pairs of its configuration.
func appendixAKey(t testing.TB) *PrivateKey {
	t.Helper()
	sk, pub, err := hpke.ParsePrivateKey(odoh.KEMX25519, h(t, appendixA.skR))
	if err != nil {
		t.Fatal(err)
	}
	k, err := newPrivateKey(1, odoh.KEMX25519, sk, pub, []Symmetric{
		{KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADAES128GCM},
		{KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADChaCha20Poly1305},
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAppendixAKeyConfig(t *testing.T) {
	want := h(t, appendixA.keyConfig)
	c, err := ParseKeyConfig(want)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID() != 1 || c.KEM() != odoh.KEMX25519 || c.Suite() != (odoh.Suite{KEM: odoh.KEMX25519, KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADAES128GCM}) {
		t.Fatalf("parsed %v", c)
	}
	if got := c.Symmetric(); len(got) != 2 || got[1] != (Symmetric{KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADChaCha20Poly1305}) {
		t.Fatalf("symmetric algorithms %v", got)
	}
	if got, _ := c.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatalf("re-encoded %x", got)
	}
	// The key configuration the gateway builds from skR is the example's.
	if got, _ := appendixAKey(t).Config().MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatalf("gateway's configuration %x, want %x", got, want)
	}
	list, err := MarshalKeyConfigs(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(list, append([]byte{0, byte(len(want))}, want...)) {
		t.Fatalf("application/ohttp-keys %x", list)
	}
}

// The client of the example, with its ephemeral key skE, encapsulates the
// example's request to the example's key configuration: the Encapsulated
// Request and the exported secret are the example's, byte for byte.
func TestAppendixARequestEncapsulation(t *testing.T) {
	cfg, err := ParseKeyConfig(h(t, appendixA.keyConfig))
	if err != nil {
		t.Fatal(err)
	}
	encReq, cc, err := encapsulateRequest(cfg, h(t, appendixA.request), h(t, appendixA.skE))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encReq, h(t, appendixA.encRequest)) {
		t.Fatalf("encapsulated request\n%x\nwant\n%x", encReq, h(t, appendixA.encRequest))
	}
	if !bytes.Equal(cc.enc, h(t, appendixA.pkE)) || !bytes.Equal(cc.secret, h(t, appendixA.secret)) {
		t.Fatalf("client context enc %x secret %x", cc.enc, cc.secret)
	}
	res, err := cc.DecapsulateResponse(h(t, appendixA.encResponse))
	if err != nil || !bytes.Equal(res, h(t, appendixA.response)) {
		t.Fatalf("client opened %x, %v", res, err)
	}
}

func TestAppendixARequestDecapsulation(t *testing.T) {
	encReq := h(t, appendixA.encRequest)
	// The example's enc is the public key of its skE, and its info is what
	// this package builds from the header.
	skE, err := ecdh.X25519().NewPrivateKey(h(t, appendixA.skE))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(skE.PublicKey().Bytes(), h(t, appendixA.pkE)) || !bytes.Equal(encReq[headerSize:headerSize+32], h(t, appendixA.pkE)) {
		t.Fatal("enc is not the public key of skE")
	}
	if got := requestInfo(encReq[:headerSize]); !bytes.Equal(got, h(t, appendixA.info)) {
		t.Fatalf("info %x", got)
	}
	hdr, err := ParseRequestHeader(encReq)
	if err != nil || hdr.KeyID != 1 || hdr.Suite != (odoh.Suite{KEM: odoh.KEMX25519, KDF: odoh.KDFHKDFSHA256, AEAD: odoh.AEADAES128GCM}) {
		t.Fatalf("header %+v, %v", hdr, err)
	}
	req, g, err := appendixAKey(t).DecapsulateRequest(encReq)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req, h(t, appendixA.request)) {
		t.Fatalf("request %x", req)
	}
	if !bytes.Equal(g.secret, h(t, appendixA.secret)) {
		t.Fatalf("exported secret %x", g.secret)
	}
}

func TestAppendixAResponseEncapsulation(t *testing.T) {
	_, g, err := appendixAKey(t).DecapsulateRequest(h(t, appendixA.encRequest))
	if err != nil {
		t.Fatal(err)
	}
	nonce := h(t, appendixA.responseNonce)
	salt := append(h(t, appendixA.pkE), nonce...)
	if prk := hpke.Extract(odoh.KDFHKDFSHA256, salt, g.secret); !bytes.Equal(prk, h(t, appendixA.prk)) {
		t.Fatalf("prk %x", prk)
	}
	key, aeadNonce := responseKeys(g.suite, g.secret, g.enc, nonce)
	if !bytes.Equal(key, h(t, appendixA.key)) || !bytes.Equal(aeadNonce, h(t, appendixA.nonce)) {
		t.Fatalf("key %x nonce %x", key, aeadNonce)
	}
	encRes, err := g.encapsulateResponse(nonce, h(t, appendixA.response))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encRes, h(t, appendixA.encResponse)) {
		t.Fatalf("encapsulated response\n%x\nwant\n%x", encRes, h(t, appendixA.encResponse))
	}
	// The client of the example, which holds the same secret and enc,
	// opens it.
	c := &ClientContext{suite: g.suite, enc: h(t, appendixA.pkE), secret: h(t, appendixA.secret)}
	res, err := c.DecapsulateResponse(h(t, appendixA.encResponse))
	if err != nil || !bytes.Equal(res, h(t, appendixA.response)) {
		t.Fatalf("client opened %x, %v", res, err)
	}
}

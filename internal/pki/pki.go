// Package pki makes the certificates that a private deployment, a test or a
// benchmark needs: an ECDSA P-256 certificate authority and server
// certificates it signs for DNS names or IP addresses. It is the one home of
// these templates for internal/testca (tests), deploy/gensecrets (operators)
// and bench/gen (benchmarks).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// backdate is how long before now a certificate becomes valid, so that a
// peer whose clock is a little behind accepts it at once.
const backdate = time.Hour

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a CA named cn, valid for validity, that issues server
// certificates only (path length zero). With names, the CA's own
// certificate is also a server certificate for them, so that one file can
// be both a server's certificate and its clients' trust anchor (as the
// benchmarks use it).
func NewCA(cn string, validity time.Duration, names ...string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	tmpl, err := template(cn, validity, names)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid, tmpl.IsCA, tmpl.MaxPathLenZero = true, true, true
	if len(names) == 0 {
		tmpl.ExtKeyUsage = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing the CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LoadCA reads a CA from PEM: the first certificate of certPEM and its
// private key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: loading the CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("pki: loading the CA: its key is not ECDSA")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("pki: loading the CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("pki: loading the CA: the certificate is not a CA's")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue makes a server certificate for names (DNS names or IP addresses;
// the first is also its common name), valid for validity, and its key.
func (ca *CA) Issue(names []string, validity time.Duration) (der []byte, key *ecdsa.PrivateKey, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("pki: a certificate needs at least one name")
	}
	if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, nil, fmt.Errorf("pki: generating a key: %w", err)
	}
	tmpl, err := template(names[0], validity, names)
	if err != nil {
		return nil, nil, err
	}
	if der, err = x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key); err != nil {
		return nil, nil, fmt.Errorf("pki: creating the certificate for %s: %w", names[0], err)
	}
	return der, key, nil
}

// CertPEM returns the CA's certificate in PEM form.
func (ca *CA) CertPEM() []byte { return CertPEM(ca.Cert.Raw) }

// CertPEM encodes a DER certificate as PEM.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyPEM encodes a private key as PKCS #8 PEM.
func KeyPEM(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// template is a server certificate's: a random serial, the validity, the
// names as SANs.
func template(cn string, validity time.Duration, names []string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: generating a serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return tmpl, nil
}

// Package testca is a throw-away certificate authority for tests.
//
// It makes an in-memory ECDSA P-256 CA and issues leaf certificates for
// the names a test needs (by default "localhost", 127.0.0.1 and ::1), so
// that tests and interop runs can use real TLS, HTTP/2 and HTTP/3 over
// loopback without touching the system trust store. Files are written
// into t.TempDir() and vanish with the test.
//
//	ca := testca.New(t)
//	srv.TLSConfig = ca.ServerTLS(t)                   // serve as localhost/127.0.0.1/::1
//	client := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS()}}
//	certFile, keyFile := ca.Issue(t, "localhost")     // for binaries taking -cert/-key
//	caFile := ca.CAFile(t)                            // for binaries taking -ca
//
// It must only be used from tests: it fails the test on any error.
package testca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/pki"
)

// validity is how long the CA and its leaves are valid (from an hour ago).
const validity = 24 * time.Hour

// DefaultNames returns the names a leaf certificate is issued for when
// none are given: "localhost", "127.0.0.1" and "::1".
func DefaultNames() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// CA is a test certificate authority. Its methods are safe for concurrent use.
type CA struct {
	ca      *pki.CA
	certPEM []byte
}

// New creates a CA valid from an hour ago for one day.
func New(t testing.TB) *CA {
	t.Helper()
	ca, err := pki.NewCA("odoh test CA", validity)
	if err != nil {
		t.Fatalf("testca: %v", err)
	}
	return &CA{ca: ca, certPEM: ca.CertPEM()}
}

// Pool returns a fresh pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.ca.Cert)
	return p
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// CAFile writes the CA certificate as PEM into a temporary directory and
// returns the file's path.
func (ca *CA) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, ca.certPEM, 0o600); err != nil {
		t.Fatalf("testca: writing CA file: %v", err)
	}
	return path
}

// Leaf issues a certificate for names (DNS names or IP addresses; the
// default names when empty), valid for one day.
func (ca *CA) Leaf(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := ca.IssuePEM(t, names...)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("testca: loading issued pair: %v", err)
	}
	return c
}

// IssuePEM issues a certificate for names (DNS names or IP addresses; the
// default names when empty) and returns the certificate and its PKCS #8
// private key in PEM form.
func (ca *CA) IssuePEM(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	if len(names) == 0 {
		names = DefaultNames()
	}
	der, key, err := ca.ca.Issue(names, validity)
	if err != nil {
		t.Fatalf("testca: %v", err)
	}
	return pki.CertPEM(der), pki.KeyPEM(key)
}

// Issue issues a certificate for names (the default names when empty) and
// writes it and its key as PEM files into a temporary directory.
func (ca *CA) Issue(t testing.TB, names ...string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.IssuePEM(t, names...)
	dir := t.TempDir()
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatalf("testca: writing certificate: %v", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("testca: writing key: %v", err)
	}
	return certFile, keyFile
}

// ServerTLS returns a server configuration presenting a fresh leaf for
// names (the default names when empty). NextProtos is left empty: servers
// set their own ALPN protocols.
func (ca *CA) ServerTLS(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	return &tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(t, names...)},
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientTLS returns a client configuration that trusts only this CA.
func (ca *CA) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
}

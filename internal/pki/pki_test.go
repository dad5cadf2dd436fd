package pki

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func verify(t *testing.T, root *x509.Certificate, der []byte, name string) error {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name})
	return err
}

// A leaf verifies for each of its names (DNS and IP) and no other, under
// its CA only; the CA reloads from its PEM and issues as before.
func TestIssue(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	der, key, err := ca.Issue([]string{"odoh.test", "192.0.2.7"}, time.Hour)
	if err != nil || key == nil {
		t.Fatal(err)
	}
	for _, name := range []string{"odoh.test", "192.0.2.7"} {
		if err := verify(t, ca.Cert, der, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if verify(t, ca.Cert, der, "other.test") == nil {
		t.Error("verified for a name it lacks")
	}
	other, _ := NewCA("other CA", time.Hour)
	if verify(t, other.Cert, der, "odoh.test") == nil {
		t.Error("verified under another CA")
	}
	if len(ca.Cert.DNSNames) != 0 || len(ca.Cert.ExtKeyUsage) != 0 || !ca.Cert.MaxPathLenZero {
		t.Errorf("a CA without names: SANs %v, EKU %v, pathlen zero %v", ca.Cert.DNSNames, ca.Cert.ExtKeyUsage, ca.Cert.MaxPathLenZero)
	}

	loaded, err := LoadCA(ca.CertPEM(), KeyPEM(ca.Key))
	if err != nil {
		t.Fatal(err)
	}
	der2, _, err := loaded.Issue([]string{"odoh.test"}, time.Hour)
	if err != nil || verify(t, ca.Cert, der2, "odoh.test") != nil {
		t.Errorf("issued by the reloaded CA: %v", err)
	}
	if _, err := LoadCA(CertPEM(der), KeyPEM(key)); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("a leaf loaded as a CA: %v", err)
	}
	if _, _, err := ca.Issue(nil, time.Hour); err == nil {
		t.Error("a certificate without names")
	}
}

// A CA made with names is its own server certificate for them.
func TestCAWithNames(t *testing.T) {
	ca, err := NewCA("bench", time.Hour, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		if err := verify(t, ca.Cert, ca.Cert.Raw, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

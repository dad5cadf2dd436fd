package certs

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/odohd/odoh/internal/testca"
)

// servedLeaf performs a real handshake against a listener using r and
// returns the leaf the client saw.
func servedLeaf(t *testing.T, ca *testca.CA, r *Reloader) []byte {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), ca.ClientTLS())
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	ca := testca.New(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c1, k1 := ca.Issue(t)
	copyFile(t, c1, certFile)
	copyFile(t, k1, keyFile)

	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := servedLeaf(t, ca, r)
	if !bytes.Equal(first, r.Certificate().Leaf.Raw) {
		t.Fatal("served certificate is not the loaded one")
	}

	// A broken certificate file: the old certificate stays in service.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if got := servedLeaf(t, ca, r); !bytes.Equal(got, first) {
		t.Fatal("a failed reload changed the served certificate")
	}

	// A certificate that does not match the key: kept out too.
	c2, k2 := ca.Issue(t)
	copyFile(t, c2, certFile)
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a mismatched pair succeeded")
	}
	if got := servedLeaf(t, ca, r); !bytes.Equal(got, first) {
		t.Fatal("a failed reload changed the served certificate")
	}

	// A good new pair is picked up.
	copyFile(t, k2, keyFile)
	if err := r.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := servedLeaf(t, ca, r)
	if bytes.Equal(second, first) {
		t.Fatal("the new certificate was not picked up")
	}
	if !bytes.Equal(second, r.Certificate().Leaf.Raw) {
		t.Fatal("served certificate is not the reloaded one")
	}
}

func TestNewReloaderErrors(t *testing.T) {
	if _, err := NewReloader(filepath.Join(t.TempDir(), "missing.pem"), "missing-key.pem"); err == nil {
		t.Fatal("NewReloader with missing files succeeded")
	}
}

func TestGetCertificateConcurrentWithReload(t *testing.T) {
	ca := testca.New(t)
	certA, keyA := ca.Issue(t, "a.test")
	certB, keyB := ca.Issue(t, "b.test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, certA, certFile)
	copyFile(t, keyA, keyFile)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Reloads swap between A and B while handshakes pick certificates:
	// each pick is a whole pair, A's or B's, never one's certificate with
	// the other's key; every reload of a matching pair succeeds.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			c, k := certA, keyA
			if i%2 == 0 {
				c, k = certB, keyB
			}
			copyFile(t, c, certFile)
			copyFile(t, k, keyFile)
			if err := r.Reload(); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
		}
	}()
	for range 200 {
		c, err := r.GetCertificate(nil)
		if err != nil || c == nil || c.Leaf == nil {
			t.Fatalf("GetCertificate = %v, %v", c, err)
		}
		name := c.Leaf.DNSNames[0]
		if name != "a.test" && name != "b.test" {
			t.Fatalf("certificate for %v", c.Leaf.DNSNames)
		}
		signer, ok := c.PrivateKey.(crypto.Signer)
		if !ok || !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(c.Leaf.PublicKey) {
			t.Fatalf("%s: the private key is not the certificate's", name)
		}
	}
	<-done
	if c, _ := r.GetCertificate(nil); c.Leaf.DNSNames[0] != "a.test" {
		t.Errorf("after the last reload (A): %v", c.Leaf.DNSNames)
	}
}

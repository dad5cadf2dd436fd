package testca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"testing"
)

func TestHandshakeOverLoopback(t *testing.T) {
	ca := New(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	// An empty ServerName verifies the IP SAN 127.0.0.1.
	for _, server := range []string{"", "localhost"} {
		cfg := ca.ClientTLS()
		cfg.ServerName = server
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("dial with ServerName %q: %v", server, err)
		}
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(b) != "hi" {
			t.Fatalf("read %q, %v", b, err)
		}
	}
	cfg := ca.ClientTLS()
	cfg.ServerName = "example.com"
	if c, err := tls.Dial("tcp", ln.Addr().String(), cfg); err == nil {
		c.Close()
		t.Fatal("handshake for a name the leaf lacks succeeded")
	}
}

func TestIssueFiles(t *testing.T) {
	ca := New(t)
	certFile, keyFile := ca.Issue(t, "odoh.test", "192.0.2.7")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if err := leaf.VerifyHostname("odoh.test"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("192.0.2.7"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("localhost"); err == nil {
		t.Error("leaf unexpectedly valid for localhost")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err != nil {
		t.Errorf("leaf does not chain to the CA: %v", err)
	}

	b, err := os.ReadFile(ca.CAFile(t))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("CA file is not a PEM certificate")
	}
}

func TestDefaultNames(t *testing.T) {
	leaf := New(t).Leaf(t).Leaf
	for _, n := range DefaultNames() {
		if err := leaf.VerifyHostname(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if ip := net.ParseIP("::1"); !leaf.IPAddresses[1].Equal(ip) {
		t.Errorf("IP SANs = %v", leaf.IPAddresses)
	}
}

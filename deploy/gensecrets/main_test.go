package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	args := []string{"-dir", dir, "-cert", "target=target,odoh.example", "-cert", "proxy=proxy,127.0.0.1,::1"}
	if err := run(args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	testCases := []struct {
		name   string
		valid  []string
		denied string
	}{
		{"target", []string{"target", "odoh.example"}, "proxy"},
		{"proxy", []string{"proxy", "127.0.0.1", "::1"}, "target"},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, tc.name+".pem"), filepath.Join(dir, tc.name+".key"))
			if err != nil {
				t.Fatal(err)
			}
			if len(pair.Certificate) != 2 {
				t.Errorf("chain of %d certificates, want leaf and CA", len(pair.Certificate))
			}
			for _, name := range append(tc.valid, tc.denied) {
				_, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots})
				if want := name != tc.denied; (err == nil) != want {
					t.Errorf("verify for %q: %v, want valid %v", name, err, want)
				}
			}
			if pair.Leaf.IsCA {
				t.Error("server certificate is a CA")
			}
			fi, err := os.Stat(filepath.Join(dir, tc.name+".key"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key mode %v (%v), want 0600", fi.Mode(), err)
			}
		})
	}
	// A second run keeps the CA unless told otherwise.
	err = run(args, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("second run: %v, want a refusal naming -force", err)
	}
	if err := run(append(args, "-force"), io.Discard, io.Discard); err != nil {
		t.Errorf("-force: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); string(again) == string(caPEM) {
		t.Error("-force kept the old CA")
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-dir", dir},
		{"-cert", "a=b"},
		{"-dir", dir, "-cert", "noequals"},
		{"-dir", dir, "-cert", "../x=y"},
		{"-dir", dir, "-cert", "a=b", "-owner", "root"},
		{"-dir", dir, "-cert", "a=b", "-days", "0"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// Package certs serves a TLS certificate that can be replaced while the
// process runs.
//
// A [Reloader] loads a PEM certificate chain and private key from two
// files. Servers use its GetCertificate method in their tls.Config, and the
// daemon calls [Reloader.Reload] on SIGHUP after the files were renewed.
// A reload that fails (unreadable files, a key that does not match, an
// expired certificate) keeps the previous certificate in service and
// returns the error, so a bad renewal never takes a server down.
package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Reloader holds the current certificate loaded from CertFile and KeyFile.
// Its methods are safe for concurrent use.
type Reloader struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// NewReloader loads the certificate chain in certFile and the private key
// in keyFile (both PEM) and returns a Reloader serving them.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again. On success the new certificate is used
// for every later handshake; on error the previous one stays in service.
func (r *Reloader) Reload() error {
	c, err := load(r.certFile, r.keyFile, time.Now())
	if err != nil {
		return err
	}
	r.current.Store(c)
	return nil
}

// Certificate returns the certificate in service. Its Leaf is set.
func (r *Reloader) Certificate() *tls.Certificate { return r.current.Load() }

// GetCertificate returns the certificate in service; it has the signature
// of tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current.Load(), nil
}

// TLSConfig returns a server configuration (TLS 1.2 or later) that serves
// the Reloader's current certificate. Callers add their ALPN protocols.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
}

func load(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %q and key %q: %w", certFile, keyFile, err)
	}
	if c.Leaf == nil {
		return nil, errors.New("loading certificate: no leaf certificate")
	}
	if now.After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("loading certificate %q: expired at %s", certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

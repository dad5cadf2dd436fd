package client

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/odohd/odoh/odoh"
)

// Pin restricts what one server may present, on top of the usual
// certificate verification. It pins a certificate, a config key, or both
// (two Pins for one host):
//
//   - Cert is the SHA-256 hash of a TBSCertificate in the server's verified
//     chain (the rule of DNS stamps: pinning the issuing CA's survives the
//     leaf's renewal). It applies to every TLS session with Host: the
//     target's session inside the configs tunnel, and direct connections.
//     Configs that came by a path where the target's certificate is not
//     seen (the proxy's relay, static configs) cannot be checked against
//     it: New refuses ConfigViaRelay for a target pinned by certificate
//     only.
//   - KeyID is the key ID (RFC 9230 §6.1) of a config the target may
//     publish, as "odoh configs" prints it. Whatever the path, configs
//     are used only if one of them has a pinned key ID, and only those
//     configs. A target that rotates its keys needs a new pin at each
//     rotation, so this suits targets with long-lived keys.
//
// Several pins for one host add up: any of them matches.
type Pin struct {
	// Host is the server's host name or IP literal, as in its URL,
	// without port; case-insensitive.
	Host string
	// Cert is a SHA-256 hash of a TBSCertificate in the verified chain.
	Cert []byte
	// KeyID is a pinned config's key ID.
	KeyID []byte
}

// ParsePin reads a pin as the CLI takes it: HOST=cert:HEX (a SHA-256 hash
// of a TBSCertificate in the chain) or HOST=key:HEX (a config's key ID).
func ParsePin(s string) (Pin, error) {
	host, spec, ok := strings.Cut(s, "=")
	kind, hexv, ok2 := strings.Cut(spec, ":")
	if !ok || !ok2 || host == "" {
		return Pin{}, fmt.Errorf("pin %q: want HOST=cert:HEX or HOST=key:HEX", s)
	}
	b, err := hex.DecodeString(hexv)
	if err != nil || len(b) == 0 {
		return Pin{}, fmt.Errorf("pin %q: %q is not hex", s, hexv)
	}
	p := Pin{Host: host}
	switch kind {
	case "cert":
		p.Cert = b
	case "key":
		p.KeyID = b
	default:
		return Pin{}, fmt.Errorf("pin %q: kind %q, want cert or key", s, kind)
	}
	return p, p.check()
}

func (p Pin) check() error {
	switch {
	case p.Host == "":
		return fmt.Errorf("pin without a host")
	case p.Cert == nil && p.KeyID == nil:
		return fmt.Errorf("pin for %s pins nothing", p.Host)
	case p.Cert != nil && len(p.Cert) != sha256.Size:
		return fmt.Errorf("pin for %s: a %d-byte certificate hash, want %d (SHA-256)", p.Host, len(p.Cert), sha256.Size)
	}
	return nil
}

// pins holds the pins of every server by lower-case host name.
type pins struct {
	certs map[string][][]byte
	keys  map[string][][]byte
}

func (ps *pins) add(p Pin) error {
	if err := p.check(); err != nil {
		return err
	}
	h := strings.ToLower(strings.Trim(p.Host, "[]"))
	if p.Cert != nil {
		if ps.certs == nil {
			ps.certs = map[string][][]byte{}
		}
		ps.certs[h] = append(ps.certs[h], p.Cert)
	}
	if p.KeyID != nil {
		if ps.keys == nil {
			ps.keys = map[string][][]byte{}
		}
		ps.keys[h] = append(ps.keys[h], p.KeyID)
	}
	return nil
}

// filter returns the configs among all whose key ID is pinned for host,
// all of them when host has no key pin, and an error when none is pinned.
func (ps *pins) filter(host string, all []*odoh.Config) ([]*odoh.Config, error) {
	ids := ps.keys[strings.ToLower(host)]
	if ids == nil {
		return all, nil
	}
	var out []*odoh.Config
	for _, c := range all {
		for _, id := range ids {
			if bytes.Equal(c.KeyID(), id) {
				out = append(out, c)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none of the %d configs of %s has a pinned key ID: %w", ErrConfig, len(all), host, ErrPinMismatch)
	}
	return out, nil
}

// verify runs after the usual certificate verification: a connection to
// a host with certificate pins needs a certificate in its verified chain
// whose TBSCertificate hashes to one of them. An IP-literal host sends no
// SNI, so there the pins of every pinned IP the leaf is valid for apply.
func (ps *pins) verify(cs tls.ConnectionState) error {
	var want [][]byte
	if cs.ServerName != "" {
		want = ps.certs[strings.ToLower(cs.ServerName)]
	} else if len(cs.PeerCertificates) > 0 {
		for h, p := range ps.certs {
			if _, err := netip.ParseAddr(h); err == nil && cs.PeerCertificates[0].VerifyHostname(h) == nil {
				want = append(want, p...)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			sum := sha256.Sum256(cert.RawTBSCertificate)
			for _, p := range want {
				if bytes.Equal(sum[:], p) {
					return nil
				}
			}
		}
	}
	name := cs.ServerName
	if name == "" {
		name = "at an IP address"
	}
	return fmt.Errorf("certificate chain of %s: %w (pinned TBSCertificate hashes)", name, ErrPinMismatch)
}

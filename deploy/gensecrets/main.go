// Command gensecrets writes a private certificate authority and server
// certificates signed by it, for deployments that do not use a public CA:
// the docker-compose demo (make compose-secrets), a test bed, or an
// operator who pins its own CA in the proxy (-ca) and the clients (-ca).
//
//	go run ./deploy/gensecrets -dir DIR [-owner UID:GID] [-days N] \
//	    -cert target=target,odoh-target.example -cert proxy=proxy,localhost,127.0.0.1
//
// It writes DIR/ca.pem and DIR/ca.key (the CA, kept by whoever issues
// certificates), and for each -cert NAME=SAN,… DIR/NAME.pem (the leaf
// certificate followed by the CA's, as servers send it) and DIR/NAME.key.
// SANs that parse as IP addresses become IP SANs. Keys are ECDSA P-256,
// PKCS #8, mode 0600. With -owner, the certificates and keys (not the
// CA's key) are given to that user, e.g. 65532:65532 for the containers.
// It refuses to overwrite an existing CA unless -force is given.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/odohd/odoh/internal/pki"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gensecrets: %v\n", err)
		os.Exit(1)
	}
}

// leaf is one -cert flag: a file name and the certificate's names.
type leaf struct {
	name string
	sans []string
}

type leaves []leaf

func (l *leaves) String() string { return fmt.Sprint(*l) }

func (l *leaves) Set(v string) error {
	name, list, ok := strings.Cut(v, "=")
	if !ok || name == "" || list == "" || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("want NAME=SAN[,SAN…], got %q", v)
	}
	var sans []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			sans = append(sans, s)
		}
	}
	*l = append(*l, leaf{name: name, sans: sans})
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gensecrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "output `DIR` (created if missing)")
	owner := fs.String("owner", "", "give certificates and keys to `UID:GID` (needs root)")
	days := fs.Int("days", 365, "validity of the server certificates in `days` (the CA's: ten times that)")
	force := fs.Bool("force", false, "overwrite an existing CA and certificates")
	var certs leaves
	fs.Var(&certs, "cert", "issue `NAME=SAN[,SAN…]` as NAME.pem and NAME.key (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || len(certs) == 0 || fs.NArg() > 0 {
		return errors.New("usage: gensecrets -dir DIR -cert NAME=SAN[,SAN…]… [-owner UID:GID] [-days N] [-force]")
	}
	if *days <= 0 {
		return errors.New("-days must be positive")
	}
	uid, gid := -1, -1
	if *owner != "" {
		var err error
		if uid, gid, err = parseOwner(*owner); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	caPath := filepath.Join(*dir, "ca.pem")
	if _, err := os.Stat(caPath); err == nil && !*force {
		return fmt.Errorf("%s exists; use -force to replace the CA and every certificate", caPath)
	}
	validity := time.Duration(*days) * 24 * time.Hour
	ca, err := pki.NewCA("odoh private CA "+time.Now().UTC().Format("2006-01-02"), 10*validity)
	if err != nil {
		return err
	}
	caPEM := ca.CertPEM()
	if err := writeFile(filepath.Join(*dir, "ca.key"), pki.KeyPEM(ca.Key), 0o600, -1, -1); err != nil {
		return err
	}
	if err := writeFile(caPath, caPEM, 0o644, uid, gid); err != nil {
		return err
	}
	for _, l := range certs {
		der, key, err := ca.Issue(l.sans, validity)
		if err != nil {
			return fmt.Errorf("issuing %s: %w", l.name, err)
		}
		chain := append(pki.CertPEM(der), caPEM...)
		if err := writeFile(filepath.Join(*dir, l.name+".pem"), chain, 0o644, uid, gid); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(*dir, l.name+".key"), pki.KeyPEM(key), 0o600, uid, gid); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s.pem and %s.key for %s\n", filepath.Join(*dir, l.name), filepath.Join(*dir, l.name), strings.Join(l.sans, ", "))
	}
	fmt.Fprintf(stdout, "wrote %s (trust it with -ca) and %s (keep it to issue more)\n", caPath, filepath.Join(*dir, "ca.key"))
	return nil
}

func parseOwner(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	if ok {
		uid, err = strconv.Atoi(u)
		if err == nil {
			gid, err = strconv.Atoi(g)
		}
	}
	if !ok || err != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("-owner %q: want numeric UID:GID", s)
	}
	return uid, gid, nil
}

// writeFile replaces path with data in mode, owned by uid:gid unless they
// are -1; the file is never readable by others while it is written.
func writeFile(path string, data []byte, mode os.FileMode, uid, gid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gensecrets-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return fmt.Errorf("giving %s to %d:%d: %w (run as root, or without -owner)", path, uid, gid, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Command odoh-target is an Oblivious DNS over HTTPS target (RFC 9230): it
// decrypts queries relayed by ODoH proxies, resolves them through a local
// zone, a cache and upstream resolvers, and encrypts the answers. Run
// "odoh-target -h" for its flags.
package main

import (
	"context"
	"os"
)

// version is the release version, set with -ldflags "-X main.version=v0.1.0".
var version string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

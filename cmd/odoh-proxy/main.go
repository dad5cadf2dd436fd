// Command odoh-proxy is an Oblivious DNS over HTTPS relay (RFC 9230 proxy):
// it forwards encrypted queries from clients to an allowlist of ODoH
// targets without revealing the clients to them. Run "odoh-proxy -h" for
// its flags.
package main

import (
	"context"
	"os"
)

// version is the release version, set with -ldflags "-X main.version=v0.1.0".
var version string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, nil))
}

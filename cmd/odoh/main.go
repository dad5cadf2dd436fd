// Command odoh is the Oblivious DoH client: dig-like private lookups, a
// target's configs, DNS stamps, seed generation and a local stub resolver.
// Run "odoh -h" for its usage.
package main

import (
	"context"
	"os"
)

// version is set with -ldflags "-X main.version=v0.1.0".
var version string

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

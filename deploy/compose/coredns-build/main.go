// Command coredns is CoreDNS v1.15.0 with only the plugins that
// deploy/compose/coredns/Corefile uses, built from the CoreDNS module as its
// own main does (coremain.Run) but without the hundred other plugins, which
// cut the build from many minutes to about one. The compose test packages
// it FROM scratch as a stand-in for the project's own image
// (docker.io/coredns/coredns, a scratch image of the full binary), which CI
// cannot pull. Build: go build -trimpath -o DIR/coredns . (CGO_ENABLED=0)
package main

import (
	"github.com/coredns/coredns/coremain"

	// The Corefile's plugins; the order they run in is CoreDNS's own
	// (dnsserver.Directives), whatever the order here.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
)

func main() {
	coremain.Run()
}

package proxy_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/odohd/odoh/proxy"
)

// A relay for two targets. The Handler is served like any other, usually
// with HTTP/2 and HTTP/3 (see internal/httpserve and cmd/odoh-proxy).
func Example() {
	h, err := proxy.New(proxy.Config{
		Policy: proxy.Policy{Allow: []string{"odoh.example", "odoh2.example:8443"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	// A query for a target outside the allowlist is refused before any
	// network activity.
	req := httptest.NewRequest(http.MethodPost,
		"/dns-query?targethost=internal.example&targetpath=%2Fdns-query", strings.NewReader("q"))
	req.Header.Set("Content-Type", "application/oblivious-dns-message")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Proxy-Status"))
	// Output: 403 odoh-proxy; error=http_request_denied; details="target not allowed"
}

// Policy.AllowOpen makes an open relay; ports and special addresses are
// still checked.
func ExamplePolicy() {
	_, err := proxy.New(proxy.Config{Policy: proxy.Policy{}})
	fmt.Println(err)
	h, err := proxy.New(proxy.Config{Policy: proxy.Policy{AllowOpen: true, OpenPorts: []uint16{443, 8443}}})
	fmt.Println(err)
	h.Close()
	// Output:
	// proxy: empty target allowlist (set Allow, or AllowOpen for an open relay)
	// <nil>
}

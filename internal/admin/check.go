package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// CheckTimeout bounds Check when its context has no deadline: a container
// runtime counts a health check that hangs as failed anyway.
const CheckTimeout = 3 * time.Second

// Check asks the admin listener at addr (a daemon's own -admin value, as
// it listens) for /readyz and returns nil if it answers 200. It is the
// -healthcheck mode of the binaries, which lets a container image without a
// shell or curl declare a HEALTHCHECK. An unspecified host (":9551",
// "0.0.0.0:9551", "[::]:9551") is asked on loopback, where a listener bound
// to every address also answers.
// An addr of "off" or "" (the listener disabled) is an error that says so.
func Check(ctx context.Context, addr string) error {
	if addr == "" || addr == "off" {
		return errors.New("the admin listener is off (-admin off): nothing to ask; give -admin (or its environment variable) as the program has it")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No proxy from the environment: the admin listener is local.
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return fmt.Errorf("%s did not answer: %w", url, err)
		}
		return fmt.Errorf("asking %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

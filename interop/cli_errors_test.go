package interop

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wantStderr fails t unless stderr is exactly the lines want, in order:
// the error once, then what to do; no log line repeats it.
func wantStderr(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%s: %d lines on stderr, want %d:\n%s", what, len(lines), len(want), stderr)
		return
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("%s: line %d is %q, want it to hold %q", what, i+1, lines[i], w)
		}
	}
}

// A new user's mistakes against a real proxy and target: each error names
// its cause once, and the next line says what to do.
func TestCLIErrorTexts(t *testing.T) {
	s := newStack(t, stackOptions{})
	target := "https://" + s.Target.Listen + "/dns-query"
	common := []string{"-ca", s.CAFile, "-allow-same-operator"}

	t.Run("HOST:PORT shorthands", func(t *testing.T) {
		out, errOut, code := runCLI(t, append(common, "-proxy", s.Proxy.Listen, "-target", s.Target.Listen, "www.example.test", "+short")...)
		if code != 0 || out != "192.0.2.80\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("proxy without its path", func(t *testing.T) {
		_, errOut, code := runCLI(t, append(common, "-proxy", "https://"+s.Proxy.Listen+"/", "-target", target, "www.example.test")...)
		wantStderr(t, "proxy URL /", errOut,
			"odoh: https://"+s.Proxy.Listen+"/ answered HTTP 404",
			"odoh: no ODoH endpoint at https://"+s.Proxy.Listen+"/: give the proxy's URI template, such as https://HOST/dns-query{?targethost,targetpath}")
		if code != 1 {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("target without its path", func(t *testing.T) {
		_, errOut, code := runCLI(t, append(common, "-proxy", s.Proxy.Listen, "-target", "https://"+s.Target.Listen+"/", "www.example.test")...)
		wantStderr(t, "target URL /", errOut,
			"answered HTTP 404 (Proxy-Status: odoh-proxy; received-status=404)",
			"odoh: the target serves no ODoH at that path: check the path in -target (usually /dns-query)")
		if code != 1 {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("target not allowed", func(t *testing.T) {
		_, errOut, _ := runCLI(t, append(common, "-proxy", s.Proxy.Listen, "-target", "https://127.0.0.1:1/dns-query", "www.example.test")...)
		wantStderr(t, "target not allowed", errOut,
			`odoh: target configs unavailable: CONNECT 127.0.0.1:1 via https://`+s.Proxy.Listen+` answered HTTP 403 (Proxy-Status: odoh-proxy; error=http_request_denied; details="target not allowed")`,
			"odoh: the proxy does not forward to this target: use a proxy that allows it, or ask the proxy's operator to allow it (odoh-proxy -allow-target HOST[:PORT])")
	})
	t.Run("HTTP/3 to a proxy without it", func(t *testing.T) {
		noH3 := start(t, "odoh-proxy", append(replaceArg(s.proxyArgs, "-listen", "127.0.0.1:0"), "-no-http3", "-admin", "off")...)
		_, errOut, _ := runCLI(t, append(common, "-http3", "-proxy", noH3.Listen, "-target", target, "www.example.test")...)
		wantStderr(t, "-http3", errOut, "odoh: target configs unavailable: opening a tunnel through https://"+noH3.Listen+": ",
			"odoh: no answer over QUIC: the server may not serve HTTP/3 (drop -http3), or UDP is blocked on the way")
	})
	t.Run("an allowlisted name for a loopback address", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(s.Target.Listen)
		p := start(t, "odoh-proxy", append(replaceArg(replaceArg(s.proxyArgs, "-listen", "127.0.0.1:0"), "-allow-target", "localhost:"+port),
			"-admin", "off")...)
		_, errOut, _ := runCLI(t, append(common, "-proxy", p.Listen, "-target", "https://localhost:"+port+"/dns-query", "www.example.test")...)
		wantStderr(t, "localhost", errOut, "error=destination_ip_prohibited",
			"odoh: the proxy refuses the target's address, which is loopback, private or otherwise special: its operator allows one such target by naming its IP address (odoh-proxy -allow-target 127.0.0.1:PORT), or all with -allow-special-addrs")
		// The proxy says why, once, with the target and not the client.
		waitFor(t, "the proxy to log the refusal", func() bool {
			return strings.Contains(p.logs.String(), `"level":"INFO","msg":"refused a request","target":"localhost:`+port+`","status":403,"proxy_status":"destination_ip_prohibited"`)
		})
	})
}

// A target that takes a query and never answers: the proxy's 504 with its
// Proxy-Status reaches the user, before the client's own timeout; and a
// tunnel to something that never speaks TLS fails with that cause.
func TestCLITargetNeverAnswers(t *testing.T) {
	s := newStack(t, stackOptions{})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	// A TLS server with the target's certificate whose handler never
	// answers: a target hung after the handshake.
	hung := &http.Server{
		Handler:   http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hold }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{mustKeyPair(t, s.CertFile, s.KeyFile)}},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hung.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = hung.Close() })
	// A listener that accepts and never speaks.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	p := start(t, "odoh-proxy", append(replaceArg(replaceArg(s.proxyArgs, "-listen", "127.0.0.1:0"), "-allow-target", ln.Addr().String()),
		"-allow-target", mute.Addr().String(), "-admin", "off", "-response-timeout", "2s")...)
	common := []string{"-ca", s.CAFile, "-allow-same-operator", "-proxy", p.Listen}

	start := time.Now()
	_, errOut, code := runCLI(t, append(common, "-target", "https://"+ln.Addr().String()+"/dns-query",
		"-config", configsHex(t, s), "www.example.test")...)
	wantStderr(t, "hung target", errOut,
		"answered HTTP 504 (Proxy-Status: odoh-proxy; error=http_response_timeout)",
		"odoh: the target took the query but did not answer within the proxy's response timeout: the target or its resolver is down or overloaded; try another target")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	t.Logf("the proxy's 504 reached the CLI after %v", time.Since(start).Round(time.Millisecond))

	_, errOut, _ = runCLI(t, append(common, "-target", "https://"+mute.Addr().String()+"/dns-query", "www.example.test")...)
	wantStderr(t, "mute target", errOut,
		"odoh: target configs unavailable: TLS with target "+mute.Addr().String()+" through the tunnel of https://"+p.Listen+
			": no TLS answer within 2s: is an HTTPS server listening at that address?")
	// With a shorter -timeout the query's deadline comes first: what it
	// waited for, and where, is named.
	_, errOut, _ = runCLI(t, append(common, "-timeout", "500ms", "-target", "https://"+mute.Addr().String()+"/dns-query", "www.example.test")...)
	wantStderr(t, "mute target, short timeout", errOut,
		"odoh: target configs unavailable: the query's deadline came while fetching the configs of target "+mute.Addr().String()+
			" through the tunnel of https://"+p.Listen+": context deadline exceeded",
		"odoh: nothing answered within -timeout: the proxy or the target is down or unreachable; -log-level debug shows each attempt")
}

func mustKeyPair(t *testing.T, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

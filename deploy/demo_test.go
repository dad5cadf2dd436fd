package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// demoTools are all that "make demo" may need: Go, make and git (a fresh
// clone has them), a POSIX userland, and dig, which it uses if present.
// No curl: the README promises a demo that needs nothing beyond Go and make.
var demoTools = []string{"bash", "sh", "env", "dirname", "mktemp", "rm", "tail", "grep", "sleep",
	"seq", "awk", "mkdir", "cat", "head", "git", "go", "make", "dig"}

// demoEnv is the environment of a demo run: a PATH holding only demoTools,
// and free ports for every listener.
func demoEnv(t *testing.T, bin string) ([]string, map[string]string) {
	t.Helper()
	needTools(t, demoTools...)
	dir := t.TempDir()
	for _, tool := range demoTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if tool == "go" {
			// go finds its GOROOT from where it is: keep its directory.
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	goBin, _ := exec.LookPath("go")
	ports := map[string]string{
		// The target and the proxy serve HTTP/3 too, and the stub UDP.
		"TARGET_PORT": freePort(t, true), "PROXY_PORT": freePort(t, true), "STUB_PORT": freePort(t, true),
		"TARGET_ADMIN": "127.0.0.1:" + freePort(t, false), "PROXY_ADMIN": "127.0.0.1:" + freePort(t, false),
		"STUB_ADMIN": "127.0.0.1:" + freePort(t, false),
	}
	env := []string{"PATH=" + dir + ":" + filepath.Dir(goBin), "BIN=" + bin}
	for k, v := range ports {
		env = append(env, k+"="+v)
	}
	return env, ports
}

// TestDemo runs "make demo" as the README says, with only Go, make, git,
// a POSIX userland and dig on the PATH: on a first run it says that the
// build takes a while, then every step shows its result and everything it
// started is stopped when it ends. With a port taken, it stops at once
// with the failing daemon's last log lines and what to do.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no demo")
	}
	bin := t.TempDir()
	env, ports := demoEnv(t, bin)

	r := runCmd(t, repoRoot, env, 15*time.Minute, "make", "demo", "BIN="+bin)
	if !strings.Contains(r.out, "the first build downloads the Go modules") { // no binaries yet
		t.Errorf("make demo's first run does not say that the first build takes a while:\n%s", r.out)
	}
	// The daemons bind the ports found free here themselves, minutes
	// later (after the build): should another process have taken one by
	// then, the demo says so and runs again on others.
	for attempt := 1; r.code != 0 && attempt < 3 && strings.Contains(r.out, "A port is taken"); attempt++ {
		t.Logf("make demo: a port found free was taken before the demo bound it; again on others:\n%s", r.out)
		env, ports = demoEnv(t, bin)
		r = runCmd(t, repoRoot, env, 15*time.Minute, "make", "demo", "BIN="+bin)
	}
	if r.code != 0 {
		t.Fatalf("make demo: exit %d:\n%s", r.code, r.out)
	}
	for _, want := range []string{
		"2001:db8::10",              // the CLI over HTTP/2
		`"data":"10 mx.demo.test."`, // over HTTP/3, as JSON
		"key_id ",                   // odoh configs
		"sdns://BQ", "sdns://hQ",    // odoh stamp: target and relay
		"served by odoh-target from its local zone", // dig through the stub, UDP
		"www.demo.test.\t\t300\tIN\tA\t192.0.2.10",  // and TCP
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("make demo's output lacks %q:\n%s", want, r.out)
		}
	}
	if !regexp.MustCompile(`(?m)^odoh_target_requests_total\{[^}]*result="ok"[^}]*\} [1-9]`).MatchString(r.out) {
		t.Errorf("make demo shows no answered request in the target's metrics:\n%s", r.out)
	}
	// Everything it started has stopped: its ports are free again.
	for _, p := range []string{ports["TARGET_PORT"], ports["PROXY_PORT"], ports["STUB_PORT"]} {
		ln, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			t.Errorf("port %s still taken after the demo: %v", p, err)
			continue
		}
		ln.Close()
	}

	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+ports["PROXY_PORT"])
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		r := runCmd(t, repoRoot, env, 5*time.Minute, "make", "demo", "BIN="+bin)
		if r.code == 0 {
			t.Fatalf("make demo with the proxy's port taken exited 0:\n%s", r.out)
		}
		for _, want := range []string{"odoh-proxy stopped", "address already in use", "A port is taken: set"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("make demo with the proxy's port taken does not say %q:\n%s", want, r.out)
			}
		}
		for _, never := range []string{
			"the first build downloads", // the binaries are there now
			"did not become ready",      // it stopped at once, not after waiting
			"odoh www.demo.test AAAA",   // and went no further
		} {
			if strings.Contains(r.out, never) {
				t.Errorf("make demo with the proxy's port taken says %q:\n%s", never, r.out)
			}
		}
	})
}

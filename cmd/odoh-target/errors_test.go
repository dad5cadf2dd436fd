package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/odohd/odoh/internal/testca"
)

// Port 443 without the privilege: the error says which capability and
// how to grant it. The test runs the binary as nobody, so it needs root.
func TestPrivilegedPortErrorNamesTheCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the daemon as nobody")
	}
	ca := testca.New(t)
	dir, err := os.MkdirTemp("", "odoh-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cert, key := ca.Issue(t)
	// nobody must read the files and the binary.
	for _, f := range []string{cert, key} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "odoh-target")
	b, err := os.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A privileged port that is free: 443 may be taken on this host.
	port := "443"
	if ln, err := net.Listen("tcp", "127.0.0.1:443"); err == nil {
		ln.Close()
	} else {
		port = "444"
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:"+port, "-admin", "off", "-log-format", "text",
		"-cert", filepath.Join(dir, filepath.Base(cert)), "-key", filepath.Join(dir, filepath.Base(key)),
		"-upstream", "udp://127.0.0.1:9")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); !exited {
		t.Fatalf("odoh-target as nobody on port %s: %v:\n%s", port, err, out)
	}
	// The address once: no "-listen A: httpserve: listening on tcp:
	// listen tcp A: bind: …".
	if n := strings.Count(string(out), "127.0.0.1:"+port); n != 1 || strings.Contains(string(out), "httpserve") {
		t.Errorf("the address %d times, or a package's name, in:\n%s", n, out)
	}
	for _, want := range []string{"-listen 127.0.0.1:" + port + " (tcp): bind: permission denied", "permission denied",
		"ports below 1024 need root or the capability CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"setcap cap_net_bind_service=+ep", "or listen on a port from 1024 up"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
}

// A seed file of the wrong size says what it holds and how to make one.
func TestSeedErrorText(t *testing.T) {
	f := filepath.Join(t.TempDir(), "seed")
	if err := os.WriteFile(f, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := readSeed(f)
	if err == nil || !strings.Contains(err.Error(), "holds 6 bytes: want 32 raw bytes or 64 hex digits (odoh keygen FILE writes one)") {
		t.Errorf("got %v", err)
	}
}

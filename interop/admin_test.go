package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/odohd/odoh/internal/admin"
	"github.com/odohd/odoh/internal/testca"
)

// TestDefaultAdminIsLoopbackOnly starts odoh-target, odoh-proxy and the
// stub side by side without -admin, in a network namespace of their own
// (so that their fixed default ports collide with nothing on the machine)
// that also has an address besides 127.0.0.1. All three come up (their
// defaults are distinct), each answers -healthcheck at its default
// address, and none answers at the other address on the same port: the
// admin listener is bound to loopback, not to every address, unless an
// operator says otherwise.
func TestDefaultAdminIsLoopbackOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "a network namespace needs root"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (util-linux, iproute2): %v", tool, err)
		}
	}
	ca := testca.New(t)
	certFile, keyFile := ca.Issue(t)
	dir := t.TempDir()
	// A second address of the namespace (TEST-NET-1): a listener on the
	// wildcard address would answer there too.
	const other = "192.0.2.10"
	var script strings.Builder
	fmt.Fprintf(&script, `set -eu
ip link set lo up
ip addr add %s/32 dev lo
`, other)
	serve := []string{"-listen", "127.0.0.1:0", "-cert", certFile, "-key", keyFile}
	daemons := []struct {
		name, addr, started string
		cmd                 string // the binary and its command
		args                []string
	}{
		{"odoh-target", admin.TargetAddr, "odoh-target serving", "odoh-target", serve},
		{"odoh-proxy", admin.ProxyAddr, "odoh-proxy serving", "odoh-proxy", append(serve, "-allow-target", "192.0.2.1")},
		{"odoh stub", admin.StubAddr, "odoh stub listening", "odoh stub", []string{"-listen", "127.0.0.1:0",
			"-log-format", "json", "-proxy", "https://proxy.example/dns-query{?targethost,targetpath}", "-target", "https://odoh.example/dns-query"}},
	}
	for i, d := range daemons {
		cmd := filepath.Join(binDir, d.cmd)
		_, port, err := net.SplitHostPort(d.addr)
		if err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		fmt.Fprintf(&script, `%[1]s %[2]s >%[3]s 2>&1 &
pids="${pids:-} $!"
n=0; until grep -q '"msg":"%[4]s"' %[3]s; do
	n=$((n+1)); [ $n -lt 300 ] || { echo "%[7]s did not start"; cat %[3]s; exit 1; }
	kill -0 $! 2>/dev/null || { echo "%[7]s exited"; cat %[3]s; exit 1; }
	sleep 0.05
done
%[1]s -healthcheck || { echo "%[7]s: no admin at its default address"; exit 1; }
if %[1]s -healthcheck -admin %[5]s:%[6]s 2>/dev/null; then echo "%[7]s: admin reachable at %[5]s"; exit 1; fi
`, cmd, "'"+strings.Join(d.args, "' '")+"'", log, d.started, other, port, d.name)
	}
	script.WriteString("kill $pids; wait || true\necho ok\n")
	cmd := exec.Command("unshare", "--net", "sh", "-c", script.String())
	// The daemons read no ODOH_ variable of the test's environment.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("%v\n%s", err, out)
	}
	if n := strings.Count(string(out), "ready"); n != len(daemons) {
		t.Fatalf("-healthcheck answered ready %d times, want %d:\n%s", n, len(daemons), out)
	}
}

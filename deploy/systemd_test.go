package deploy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
	"github.com/odohd/odoh/internal/testlog"
)

// units are the systemd units of systemd/ and the binaries they run.
var units = []struct{ name, binary string }{
	{"odoh-target.service", "odoh-target"},
	{"odoh-proxy.service", "odoh-proxy"},
	{"odoh-stub.service", "odoh"},
}

// maxExposure is the highest "systemd-analyze security" score a unit may
// have: 2.0 is the top of its "OK" band.
const maxExposure = 2.0

// unitRoot lays out a root directory for systemd-analyze --root: the
// distribution's units (for the targets the units are ordered after), the
// odoh units in etc/systemd/system, the binaries in usr/local/bin and kill
// for ExecReload, so that verify checks that every command exists.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	var sysUnits string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			sysUnits = d
			break
		}
	}
	if sysUnits == "" {
		t.Fatal("no /usr/lib/systemd/system: is systemd installed?")
	}
	for _, d := range []string{"etc/systemd/system", "usr/local/bin", "usr/bin", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "", nil, time.Minute, "cp", "-r", sysUnits, filepath.Join(root, "usr/lib/systemd/system"))
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "", nil, time.Minute, "cp", kill, filepath.Join(root, "usr/bin/kill"))
	bin := binaries(t)
	for _, u := range units {
		mustRun(t, "", nil, time.Minute, "cp", filepath.Join(bin, u.binary), filepath.Join(root, "usr/local/bin", u.binary))
		mustRun(t, "", nil, time.Minute, "cp", filepath.Join("systemd", u.name), filepath.Join(root, "etc/systemd/system", u.name))
	}
	return root
}

var exposureRE = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+) (\S+)`)

// TestSystemdUnits: each unit passes systemd-analyze verify, scores at most
// maxExposure with systemd-analyze security, and has what an operator was
// promised (a transient user, the one capability to bind 443, credentials,
// readiness notification, reload by SIGHUP).
func TestSystemdUnits(t *testing.T) {
	needTools(t, "systemd-analyze", "go")
	root := unitRoot(t)
	for _, u := range units {
		t.Run(u.name, func(t *testing.T) {
			r := runCmd(t, "", nil, time.Minute, "systemd-analyze", "verify", "--root="+root, u.name)
			if r.code != 0 || strings.TrimSpace(r.out) != "" {
				t.Errorf("systemd-analyze verify: exit %d:\n%s", r.code, r.out)
			}
			r = runCmd(t, "", nil, time.Minute, "systemd-analyze", "security", "--offline=yes", "--root="+root, u.name)
			m := exposureRE.FindStringSubmatch(r.out)
			if r.code != 0 || m == nil || m[1] != u.name {
				t.Fatalf("systemd-analyze security: exit %d, no score:\n%s", r.code, r.out)
			}
			score, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("systemd-analyze security --offline=yes %s: %s %s", u.name, m[2], m[3])
			if score > maxExposure {
				t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, r.out)
			}
			checkUnit(t, u.name)
		})
	}
}

// checkUnit checks the settings the README documents.
func checkUnit(t *testing.T, name string) {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = append(set[k], v)
		}
	}
	one := func(k string) string {
		if len(set[k]) != 1 {
			return ""
		}
		return set[k][0]
	}
	for k, want := range map[string]string{
		"Type": "notify", "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"AmbientCapabilities": "CAP_NET_BIND_SERVICE", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		if got := one(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	creds := map[string]bool{}
	for _, c := range set["LoadCredential"] {
		id, _, _ := strings.Cut(c, ":")
		creds[id] = true
	}
	var want []string
	switch name {
	case "odoh-target.service":
		want = []string{"cert.pem", "key.pem", "seed"}
	case "odoh-proxy.service":
		want = []string{"cert.pem", "key.pem"}
	}
	for _, c := range want {
		if !creds[c] || !strings.Contains(one("ExecStart"), "%d/"+c) {
			t.Errorf("credential %s is not loaded, or ExecStart does not read it from %%d", c)
		}
	}
}

// TestReadiness: each binary a unit (or an image's HEALTHCHECK) runs tells
// the service manager READY=1 once it serves, brackets a SIGHUP reload and
// says STOPPING=1 on SIGTERM, over a real $NOTIFY_SOCKET as systemd's
// Type=notify needs; and its -healthcheck mode finds it ready while it runs
// and not once it has stopped.
func TestReadiness(t *testing.T) {
	needTools(t, "go")
	bin := binaries(t)
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	testCases := []struct {
		name  string
		cmd   []string // before the flags
		flags []string
	}{
		{"odoh-target", nil, []string{"-listen", "127.0.0.1:0", "-cert", cert, "-key", key,
			"-upstream", "udp://127.0.0.1:9"}},
		{"odoh-proxy", nil, []string{"-listen", "127.0.0.1:0", "-cert", cert, "-key", key,
			"-allow-target", "odoh.example"}},
		{"odoh", []string{"stub"}, []string{"-listen", "127.0.0.1:0",
			"-proxy", "https://proxy.example/dns-query{?targethost,targetpath}",
			"-target", "https://odoh.example/dns-query"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			// The admin listener takes a port of its own choosing, read
			// from the log: a port found free here could be taken
			// before the daemon binds it.
			var adminAddr string
			healthcheck := func() cmdResult {
				args := append(slices.Clone(tc.cmd), "-healthcheck", "-admin", adminAddr)
				return runCmd(t, "", nil, time.Minute, filepath.Join(bin, tc.name), args...)
			}
			sock := filepath.Join(t.TempDir(), "notify")
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			args := append(append(slices.Clone(tc.cmd), tc.flags...), "-admin", "127.0.0.1:0", "-log-format", "json")
			cmd := exec.Command(filepath.Join(bin, tc.name), args...)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
			logs := &testlog.Buffer{}
			cmd.Stdout, cmd.Stderr = io.Discard, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			expect := func(want string) {
				t.Helper()
				if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 512)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("waiting for %s: %v\nlogs:\n%s", want, err, logs.String())
				}
				if got := strings.SplitN(string(buf[:n]), "\n", 2)[0]; got != want {
					t.Fatalf("notified %q, want %q", buf[:n], want)
				}
			}
			expect("READY=1")
			adminAddr = loggedAdmin(t, logs)
			if r := healthcheck(); r.code != 0 || strings.TrimSpace(r.out) != "ready" {
				t.Errorf("-healthcheck of the running %s: exit %d: %s", tc.name, r.code, r.out)
			}
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			expect("RELOADING=1")
			expect("READY=1")
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			expect("STOPPING=1")
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
			}
			if r := healthcheck(); r.code != 1 || !strings.Contains(r.out, adminAddr) {
				t.Errorf("-healthcheck of the stopped %s: exit %d: %s", tc.name, r.code, r.out)
			}
		})
	}
}

// loggedAdmin returns the admin address a daemon's JSON log gives on its
// "serving" (the stub: "listening") line, waiting for the line a while.
func loggedAdmin(t *testing.T, logs *testlog.Buffer) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var rec struct{ Msg, Admin string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Admin != "" &&
				(strings.HasSuffix(rec.Msg, " serving") || rec.Msg == "odoh stub listening") {
				return rec.Admin
			}
		}
	}
	t.Fatalf("no admin address in the log:\n%s", logs)
	return ""
}

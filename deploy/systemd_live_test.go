package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/odohd/odoh/internal/testca"
)

// liveSetup installs the units as their headers say, with the settings of
// a one-machine test bed: the target answers a local zone, the proxy
// relays to it, the stub asks through both.
const liveSetup = `set -eu
cd /root/in
install -m 0755 odoh odoh-target odoh-proxy /usr/local/bin/
install -m 0644 odoh-target.service odoh-proxy.service odoh-stub.service /etc/systemd/system/
install -d -m 0700 /etc/odoh/target /etc/odoh/proxy
install -m 0600 cert.pem /etc/odoh/target/cert.pem; install -m 0600 key.pem /etc/odoh/target/key.pem
install -m 0600 cert.pem /etc/odoh/proxy/cert.pem; install -m 0600 key.pem /etc/odoh/proxy/key.pem
/usr/local/bin/odoh keygen -out /etc/odoh/target/seed >/dev/null
install -m 0644 ca.pem zone /etc/odoh/
echo 127.0.0.1 >/etc/odoh/proxy-targets
printf 'ODOH_TARGET_LISTEN=127.0.0.1:443\nODOH_TARGET_UPSTREAM=udp://127.0.0.1:9\nODOH_TARGET_LOCAL_ZONE=/etc/odoh/zone\n' >/etc/odoh/target.env
printf 'ODOH_PROXY_LISTEN=127.0.0.1:8443\nODOH_PROXY_CA=/etc/odoh/ca.pem\n' >/etc/odoh/proxy.env
printf 'ODOH_PROXY=https://127.0.0.1:8443/dns-query{?targethost,targetpath}\nODOH_TARGET=https://127.0.0.1/dns-query\nODOH_CA=/etc/odoh/ca.pem\nODOH_ALLOW_SAME_OPERATOR=true\n' >/etc/odoh/stub.env
systemctl daemon-reload
systemctl start odoh-target odoh-proxy odoh-stub
`

// TestSystemdLive runs the three units under a real systemd, PID 1 of a
// container whose root is an overlay of this machine's (its writes are
// thrown away), because the machines that run the tests do not boot
// systemd: each starts with its credentials, sandbox and Type=notify
// readiness; the stub answers through the proxy and the target; a reload
// re-reads the zone and a flush through the stub's admin listener shows
// the change; each process runs as a transient user with no capability
// but CAP_NET_BIND_SERVICE, under no_new_privs and a system-call filter;
// and each stops cleanly.
func TestSystemdLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no containers")
	}
	needTools(t, "podman", "runc", "go", "systemd-analyze", "dig")
	needRoot(t)
	containersConf(t)
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Fatalf("no /lib/systemd/systemd: install systemd (.ci/run does): %v", err)
	}
	bin := binaries(t)
	in := t.TempDir()
	ca := testca.New(t)
	cert, key := ca.Issue(t)
	for src, dst := range map[string]string{
		filepath.Join(bin, "odoh"): "odoh", filepath.Join(bin, "odoh-target"): "odoh-target",
		filepath.Join(bin, "odoh-proxy"): "odoh-proxy", cert: "cert.pem", key: "key.pem", ca.CAFile(t): "ca.pem",
	} {
		mustRun(t, "", nil, time.Minute, "cp", src, filepath.Join(in, dst))
	}
	for _, u := range units {
		mustRun(t, "", nil, time.Minute, "cp", filepath.Join("systemd", u.name), in)
	}
	zone := "z.test. 300 IN SOA ns.z.test. a.z.test. 1 3600 600 86400 60\nwww.z.test. 300 IN A 192.0.2.77\n"
	if err := os.WriteFile(filepath.Join(in, "zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}

	name := "odoh-systemd-" + uniqueID(t)
	t.Cleanup(func() { runCmd(t, "", nil, time.Minute, "podman", "rm", "-f", "-t", "0", name) })
	// Privileged, so that systemd can give each service its namespaces;
	// fresh tmpfs mounts that copy nothing of this machine's busy /tmp
	// and /run; only basic.target, not this machine's services.
	mustRun(t, "", nil, 2*time.Minute, "podman", "run", "-d", "--name", name, "--privileged", "--systemd=always",
		"--mount", "type=tmpfs,destination=/tmp,notmpcopyup", "--mount", "type=tmpfs,destination=/run,notmpcopyup",
		"--mount", "type=tmpfs,destination=/var/tmp,notmpcopyup",
		"--rootfs", "/:O", "/lib/systemd/systemd", "--system", "--unit=basic.target")
	exec := func(script string) cmdResult {
		return runCmd(t, "", nil, 2*time.Minute, "podman", "exec", name, "bash", "-c", script)
	}
	must := func(script string) string {
		t.Helper()
		r := exec(script)
		if r.code != 0 {
			logs := exec("journalctl --no-pager -u odoh-target -u odoh-proxy -u odoh-stub | tail -n 30")
			t.Fatalf("%s: exit %d:\n%s\njournal:\n%s", script, r.code, r.out, logs.out)
		}
		return r.out
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if r := exec("systemctl is-active basic.target"); r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd did not reach basic.target:\n%s", runCmd(t, "", nil, time.Minute, "podman", "logs", name).out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// systemd moves each service's credentials into place from a mount
	// namespace of its own, which needs /run to propagate mounts, as it
	// does on a booted machine.
	must("mount --make-rshared /")
	mustRun(t, "", nil, time.Minute, "podman", "cp", in+"/.", name+":/root/in")
	must(liveSetup)

	dig := "dig @127.0.0.1 -p 5353 +tries=1 +time=5 +short www.z.test A"
	if got := strings.TrimSpace(must(dig)); got != "192.0.2.77" {
		t.Fatalf("the stub under systemd answered %q, want 192.0.2.77", got)
	}
	out := must(`/usr/local/bin/odoh -ca /etc/odoh/ca.pem -allow-same-operator -http3 -json \
		-proxy 'https://127.0.0.1:8443/dns-query{?targethost,targetpath}' -target https://127.0.0.1/dns-query www.z.test`)
	if !strings.Contains(out, `"data":"192.0.2.77"`) {
		t.Errorf("the CLI over HTTP/3 through the proxy under systemd: %s", out)
	}

	// A reload re-reads the zone; the stub's cache holds the old answer
	// until it is flushed through its admin listener.
	must("sed -i s/192.0.2.77/192.0.2.78/ /etc/odoh/zone && systemctl reload odoh-target odoh-proxy odoh-stub")
	if got := strings.TrimSpace(must(dig)); got != "192.0.2.77" {
		t.Errorf("after the reload the stub answered %q, want its cached 192.0.2.77", got)
	}
	flush := must(`exec 3<>/dev/tcp/127.0.0.1/9553; printf 'POST /cache/flush?name=www.z.test HTTP/1.0\r\n\r\n' >&3; cat <&3`)
	if !strings.Contains(flush, "flushed") {
		t.Errorf("flush through the stub's admin listener: %s", flush)
	}
	if got := strings.TrimSpace(must(dig)); got != "192.0.2.78" {
		t.Errorf("after the reload and the flush the stub answered %q, want 192.0.2.78", got)
	}

	for _, u := range units {
		st := must("p=$(systemctl show -p MainPID --value " + u.name + "); stat -c 'uid %u' /proc/$p; grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/$p/status")
		for _, want := range []string{"CapEff:\t0000000000000400", "CapPrm:\t0000000000000400", "NoNewPrivs:\t1", "Seccomp:\t2"} {
			if !strings.Contains(st, want) {
				t.Errorf("%s: %q lacks %q (only CAP_NET_BIND_SERVICE, no_new_privs, a seccomp filter)", u.name, st, want)
			}
		}
		if strings.HasPrefix(st, "uid 0\n") {
			t.Errorf("%s runs as root", u.name)
		}
	}
	must("systemctl stop odoh-stub odoh-proxy odoh-target")
	for _, u := range units {
		if got := strings.TrimSpace(must("systemctl show -p Result --value " + u.name)); got != "success" {
			t.Errorf("%s stopped with result %q", u.name, got)
		}
	}
}

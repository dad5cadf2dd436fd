package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/odohd/odoh/odoh"
)

// resolverImage is the CoreDNS image the compose test substitutes for
// docker.io/coredns/coredns, which CI cannot pull: the same CoreDNS,
// compiled from the module proxy by scripts/coredns-image.sh and kept
// between runs (it is a cache, not something the test starts).
const resolverImage = "localhost/odoh-test-coredns:1.15.0"

// imageConfig is what the test reads of "podman image inspect" (which
// puts the health check beside the OCI config, not in it).
type imageConfig struct {
	Config struct {
		User         string
		Entrypoint   []string
		ExposedPorts map[string]struct{}
		Labels       map[string]string
	}
	Healthcheck *struct{ Test []string }
}

// TestContainers builds the images with "make image" (podman, from the
// Dockerfile), checks what is in them, then brings docker-compose.yml up
// with podman-compose, waits until its health checks pass, resolves names
// from the host through the published proxy port to the target and CoreDNS
// over HTTP/2 and HTTP/3, and brings it down again.
func TestContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no containers")
	}
	needTools(t, "podman", "podman-compose", "runc", "make", "go")
	needRoot(t)
	containersConf(t)
	id := uniqueID(t)
	prefix := "localhost/"
	rootfs := filepath.Join("bin", "image", id, "rootfs")
	images := map[string]string{}
	for _, name := range []string{"odoh-target", "odoh-proxy", "odoh"} {
		images[name] = prefix + name + ":" + id
	}
	// The build leaves its stages' images untagged: remove those it made
	// (the IDs it printed), not another run's, so that runs do not pile
	// them up.
	var built []string
	t.Cleanup(func() {
		for _, img := range images {
			runCmd(t, repoRoot, nil, time.Minute, "podman", "rmi", "-f", img)
		}
		dangling := strings.Fields(runCmd(t, "", nil, time.Minute, "podman", "images", "-q", "--filter", "dangling=true").out)
		for _, img := range dangling {
			if slices.ContainsFunc(built, func(b string) bool { return strings.HasPrefix(b, img) || strings.HasPrefix(img, b) }) {
				runCmd(t, "", nil, time.Minute, "podman", "rmi", img)
			}
		}
		os.RemoveAll(filepath.Join(repoRoot, "bin", "image", id))
	})
	out := mustRun(t, repoRoot, nil, 15*time.Minute, "make", "image",
		"IMAGE_PREFIX="+prefix, "IMAGE_TAG="+id, "IMAGE_ROOTFS="+rootfs)
	for _, m := range regexp.MustCompile(`(?m)^--> ([0-9a-f]{11,})$`).FindAllStringSubmatch(out, -1) {
		built = append(built, m[1])
	}

	t.Run("image", func(t *testing.T) {
		checkStatic(t, filepath.Join(repoRoot, rootfs, "usr/local/bin"))
		for name, img := range images {
			var cfgs []imageConfig
			if err := json.Unmarshal([]byte(mustRun(t, "", nil, time.Minute, "podman", "image", "inspect", img)), &cfgs); err != nil || len(cfgs) != 1 {
				t.Fatalf("inspect %s: %v", img, err)
			}
			c, health := cfgs[0].Config, cfgs[0].Healthcheck
			if c.User != "65532:65532" {
				t.Errorf("%s: user %q, want the numeric non-root 65532:65532", name, c.User)
			}
			if want := []string{"/usr/local/bin/" + name}; !slices.Equal(c.Entrypoint, want) {
				t.Errorf("%s: entrypoint %q, want %q", name, c.Entrypoint, want)
			}
			want := []string{"CMD", "/usr/local/bin/" + name, "-healthcheck"}
			if name == "odoh" {
				want = []string{"CMD", "/usr/local/bin/odoh", "stub", "-healthcheck"}
			}
			if health == nil || !slices.Equal(health.Test, want) {
				t.Errorf("%s: healthcheck %+v, want %q (run without a shell)", name, health, want)
			}
			if name != "odoh" {
				for _, p := range []string{"443/tcp", "443/udp"} {
					if _, ok := c.ExposedPorts[p]; !ok {
						t.Errorf("%s: %s not exposed (%v)", name, p, c.ExposedPorts)
					}
				}
			}
			if c.Labels["org.opencontainers.image.licenses"] != "Apache-2.0" {
				t.Errorf("%s: licence label %q", name, c.Labels["org.opencontainers.image.licenses"])
			}
			checkFiles(t, img, id+"-"+name)
		}
		// No shell to run anything else with.
		if r := runCmd(t, "", nil, time.Minute, "podman", "run", "--rm", "--entrypoint", "/bin/sh", images["odoh"], "-c", "true"); r.code == 0 {
			t.Error("the image has a /bin/sh")
		}
		out := mustRun(t, "", nil, time.Minute, "podman", "run", "--rm", "--no-healthcheck", images["odoh-target"], "-version")
		if !strings.HasPrefix(out, "odoh-target ") {
			t.Errorf("odoh-target -version in the image: %q", out)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("compose", func(t *testing.T) { testCompose(t, id, images, filepath.Join(repoRoot, rootfs, "usr/local/bin/odoh")) })
}

// checkStatic: the binaries have no ELF interpreter and no shared
// libraries, so that they run FROM scratch.
func checkStatic(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{"odoh-target", "odoh-proxy", "odoh"} {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v)", name, p.Type)
			}
		}
		f.Close()
	}
}

// checkFiles: the image holds exactly the three binaries, the CA bundle
// and the user database, and the bundle holds certificates.
func checkFiles(t *testing.T, img, name string) {
	t.Helper()
	mustRun(t, "", nil, time.Minute, "podman", "create", "--name", name, img)
	defer runCmd(t, "", nil, time.Minute, "podman", "rm", "-f", name)
	cmd := exec.Command("podman", "export", name)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	var files []string
	var bundle []byte
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		n := strings.TrimPrefix(h.Name, "/")
		files = append(files, n)
		if n == "etc/ssl/certs/ca-certificates.crt" {
			bundle, _ = io.ReadAll(tr)
		}
	}
	slices.Sort(files)
	want := []string{"etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt",
		"usr/local/bin/odoh", "usr/local/bin/odoh-proxy", "usr/local/bin/odoh-target"}
	if !slices.Equal(files, want) {
		t.Errorf("%s holds %q, want %q", img, files, want)
	}
	if pool := x509.NewCertPool(); len(bundle) == 0 || !pool.AppendCertsFromPEM(bundle) {
		t.Errorf("%s: the CA bundle holds no certificate", img)
	}
}

// testCompose runs docker-compose.yml under the project odoh-ID.
func testCompose(t *testing.T, id string, images map[string]string, cli string) {
	mustRun(t, repoRoot, nil, 30*time.Minute, "./scripts/coredns-image.sh", resolverImage)
	secrets := t.TempDir()
	mustRun(t, repoRoot, nil, 5*time.Minute, "./scripts/compose-secrets.sh", secrets)
	// The test's files must be readable by the containers' uid 65532.
	if err := os.Chmod(secrets, 0o755); err != nil {
		t.Fatal(err)
	}

	project := "odoh-" + id
	proxyPort := freePort(t, true)
	ports := map[string]string{"target admin": freePort(t, false), "proxy admin": freePort(t, false)}
	env := []string{
		"ODOH_TARGET_IMAGE=" + images["odoh-target"],
		"ODOH_PROXY_IMAGE=" + images["odoh-proxy"],
		"ODOH_RESOLVER_IMAGE=" + resolverImage,
		"ODOH_SECRETS=" + secrets,
		"ODOH_PROXY_PUBLISH=127.0.0.1:" + proxyPort,
		"ODOH_TARGET_PUBLISH=127.0.0.1:" + freePort(t, true),
		"ODOH_TARGET_ADMIN_PUBLISH=" + ports["target admin"],
		"ODOH_PROXY_ADMIN_PUBLISH=" + ports["proxy admin"],
	}
	compose := func(args ...string) cmdResult {
		return runCmd(t, repoRoot, env, 5*time.Minute, "podman-compose",
			append([]string{"-p", project, "-f", "docker-compose.yml"}, args...)...)
	}
	containers := map[string]string{}
	for _, s := range []string{"resolver", "target", "proxy"} {
		containers[s] = project + "_" + s + "_1"
	}
	network := project + "_default"
	t.Cleanup(func() {
		compose("down")
		for _, c := range containers {
			runCmd(t, "", nil, time.Minute, "podman", "rm", "-f", c)
		}
		runCmd(t, "", nil, time.Minute, "podman", "network", "rm", "-f", network)
	})
	if r := compose("up", "-d", "--no-build"); r.code != 0 {
		t.Fatalf("podman-compose up: exit %d:\n%s", r.code, r.out)
	}

	// Healthy: podman runs each image's HEALTHCHECK (the binary's
	// -healthcheck mode). Its timers need systemd, which these machines do
	// not run as PID 1, so the test asks podman to run the check.
	for _, s := range []string{"target", "proxy"} {
		waitHealthy(t, containers[s])
	}
	if st := strings.TrimSpace(mustRun(t, "", nil, time.Minute, "podman", "inspect", "--format", "{{.State.Status}}", containers["resolver"])); st != "running" {
		t.Fatalf("resolver %s", st)
	}

	// Admin endpoints: published, and on the host's loopback only.
	for _, s := range []string{"target", "proxy"} {
		out := mustRun(t, "", nil, time.Minute, "podman", "port", containers[s])
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "955") && !strings.Contains(l, "-> 127.0.0.1:") {
				t.Errorf("%s publishes its admin port beyond loopback: %s", s, l)
			}
		}
		resp, err := http.Get("http://127.0.0.1:" + ports[s+" admin"] + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz through the published admin port: %s", s, resp.Status)
		}
	}

	// The CLI on the host: through the proxy's published port to the
	// target (by its service name, which only the proxy resolves) and to
	// CoreDNS, whose zone says it answered.
	caFile := filepath.Join(secrets, "ca.pem")
	common := []string{"-ca", caFile, "-timeout", "10s",
		"-proxy", "https://127.0.0.1:" + proxyPort + "/dns-query{?targethost,targetpath}",
		"-target", "https://target/dns-query", "-json"}
	for _, proto := range []string{"HTTP/2", "HTTP/3"} {
		args := common
		if proto == "HTTP/3" {
			args = append(slices.Clone(common), "-http3")
		}
		for _, q := range []struct{ name, qtype, want string }{
			{"www.demo.test", "AAAA", "2001:db8::10"},
			{"txt.demo.test", "TXT", "served by CoreDNS behind odoh-target"},
		} {
			out := mustRun(t, "", nil, time.Minute, cli, append(slices.Clone(args), q.name, q.qtype)...)
			var ans struct {
				Status string
				Answer []struct{ Data string }
			}
			if err := json.Unmarshal([]byte(out), &ans); err != nil {
				t.Fatalf("%s: %v: %s", proto, err, out)
			}
			if ans.Status != "NOERROR" || len(ans.Answer) != 1 || !strings.Contains(ans.Answer[0].Data, q.want) {
				t.Errorf("%s %s %s: %s, want %q", proto, q.name, q.qtype, out, q.want)
			}
		}
	}
	// HTTP/3 really is on the published UDP port: a request over QUIC
	// alone gets the target's configs through the proxy's relay.
	checkHTTP3(t, caFile, "https://127.0.0.1:"+proxyPort+"/.well-known/odohconfigs?targethost=target")

	// Down leaves no container of the project, running or not.
	if r := compose("down"); r.code != 0 {
		t.Fatalf("podman-compose down: exit %d:\n%s", r.code, r.out)
	}
	left := mustRun(t, "", nil, time.Minute, "podman", "ps", "-a", "--format", "{{.Names}}",
		"--filter", "label=io.podman.compose.project="+project)
	if strings.TrimSpace(left) != "" {
		t.Errorf("containers left after down: %s", left)
	}
	// podman-compose 1.0.3 leaves the network: removing it shows nothing
	// is attached any more.
	if r := runCmd(t, "", nil, time.Minute, "podman", "network", "rm", network); r.code != 0 {
		t.Errorf("network %s still in use after down: %s", network, r.out)
	}
}

func waitHealthy(t *testing.T, container string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last cmdResult
	for time.Now().Before(deadline) {
		last = runCmd(t, "", nil, time.Minute, "podman", "healthcheck", "run", container)
		status := strings.TrimSpace(runCmd(t, "", nil, time.Minute, "podman", "inspect", "--format", "{{.State.Health.Status}}", container).out)
		if last.code == 0 && status == "healthy" {
			return
		}
		time.Sleep(time.Second)
	}
	logs := runCmd(t, "", nil, time.Minute, "podman", "logs", "--tail", "20", container)
	t.Fatalf("%s not healthy: %s\nlogs:\n%s", container, last.out, logs.out)
}

func checkHTTP3(t *testing.T, caFile, url string) {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("HTTP/3 to the published UDP port: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 3 {
		t.Fatalf("HTTP/3 configs: %s %s", resp.Proto, resp.Status)
	}
	cfgs, err := odoh.ParseConfigs(body)
	if err != nil || len(cfgs) == 0 {
		t.Errorf("configs over HTTP/3: %v", err)
	}
}

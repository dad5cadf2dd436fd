package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository, where the Makefile, the Dockerfile and
// docker-compose.yml are.
var repoRoot = func() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}()

// needTools skips the test when a tool is missing, except under CI, where
// .ci/run installs them all and a missing one is a failure.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed (.ci/run installs it): %v", tool, err)
			}
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
}

// needRoot skips as needTools does: podman here runs rootful (see
// ../../shared/containers.md) and the secrets are given to uid 65532.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the container tests run as root under CI")
		}
		t.Skip("the container tests need root (rootful podman)")
	}
}

// uniqueID names what a test creates (images, compose projects), so that
// runs in other worktrees at the same time do not collide.
func uniqueID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// cmdResult is a finished command.
type cmdResult struct {
	out  string // stdout and stderr, interleaved
	code int
}

// runCmd runs name in dir with env added to the test's environment and
// returns its output and exit code; it fails the test if the command
// cannot start or outlives timeout.
func runCmd(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %v:\n%s", name, strings.Join(args, " "), timeout, out.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return cmdResult{out: out.String(), code: code}
}

// mustRun is runCmd that fails the test unless the command exits 0.
func mustRun(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	r := runCmd(t, dir, env, timeout, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d:\n%s", name, strings.Join(args, " "), r.code, r.out)
	}
	return r.out
}

// containersConf points podman at runc with cgroupfs and no default
// ulimits, as these machines need (../../shared/containers.md); .ci/run
// sets CONTAINERS_CONF the same way.
func containersConf(t *testing.T) {
	t.Helper()
	if os.Getenv("CONTAINERS_CONF") != "" {
		return
	}
	p := filepath.Join(t.TempDir(), "containers.conf")
	conf := "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_CONF", p)
}

// freePort returns a loopback port free for TCP and, with udp, for UDP too
// (the proxy publishes HTTPS and HTTP/3 on one port number).
func freePort(t *testing.T, udp bool) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if !udp {
			ln.Close()
			return strconv.Itoa(port)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return strconv.Itoa(port)
		}
	}
	t.Fatal("no free port")
	return ""
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	buildOut  []byte
)

// binaries builds odoh-target, odoh-proxy and odoh once per test process
// and returns their directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "odoh-deploy-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/...")
		cmd.Dir = repoRoot
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v\n%s", buildErr, buildOut)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

package cli

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestRuntimeGCPercent(t *testing.T) {
	testCases := []struct {
		name  string
		args  []string
		env   map[string]string
		apply bool
		want  int
	}{
		{name: "default", apply: true, want: DefaultGCPercent},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}, apply: false, want: DefaultGCPercent},
		{name: "flag beats GOGC", args: []string{"-gc-percent", "200"}, env: map[string]string{"GOGC": "100"}, apply: true, want: 200},
		{name: "env beats GOGC", env: map[string]string{"GOGC": "100", "ODOH_TEST_GC_PERCENT": "50"}, apply: true, want: 50},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var r Runtime
			r.AddFlags(fs, "ODOH_TEST")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if v, ok := tc.env["ODOH_TEST_GC_PERCENT"]; ok {
				t.Setenv("ODOH_TEST_GC_PERCENT", v)
			}
			if err := ApplyEnv(fs, "ODOH_TEST"); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return tc.env[k] }
			if got := r.gcApplies(getenv); got != tc.apply || r.GCPercent != tc.want {
				t.Fatalf("applies %v, percent %d; want %v, %d", got, r.GCPercent, tc.apply, tc.want)
			}
		})
	}
}

func TestCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	stop, err := StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile not written: %v", err)
	}
	if _, err := StartCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof")); err == nil {
		t.Fatal("profile in a missing directory: no error")
	}
}

func TestRuntimeMemoryLimit(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var r Runtime
	r.AddFlags(fs, "ODOH_TEST")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if !r.applies("memory-limit", "GOMEMLIMIT", getenv) || r.MemoryMiB != DefaultMemoryLimit {
		t.Errorf("default: %d", r.MemoryMiB)
	}
	env["GOMEMLIMIT"] = "2GiB"
	if r.applies("memory-limit", "GOMEMLIMIT", getenv) {
		t.Error("GOMEMLIMIT set: -memory-limit still applies")
	}
	if err := fs.Parse([]string{"-memory-limit", "300"}); err != nil {
		t.Fatal(err)
	}
	if !r.applies("memory-limit", "GOMEMLIMIT", getenv) || r.MemoryMiB != 300 {
		t.Error("the flag does not beat GOMEMLIMIT")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	stop, err := r.Apply()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("limit %d, want 300 MiB", got)
	}
}

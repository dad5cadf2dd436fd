package main

import (
	"io"
	"testing"

	"github.com/odohd/odoh/internal/cli"
)

func TestGCPercent(t *testing.T) {
	testCases := []struct {
		name  string
		args  []string
		env   map[string]string
		apply bool
		want  int
	}{
		{name: "default", apply: true, want: defaultStubGCPercent},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}, apply: false, want: defaultStubGCPercent},
		{name: "flag beats GOGC", args: []string{"-gc-percent", "200"}, env: map[string]string{"GOGC": "100"}, apply: true, want: 200},
		{name: "env beats GOGC", env: map[string]string{"GOGC": "100", "ODOH_GC_PERCENT": "50"}, apply: true, want: 50},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			var o options
			fs := newFlagSet(&o, io.Discard)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if v, ok := tc.env["ODOH_GC_PERCENT"]; ok {
				t.Setenv("ODOH_GC_PERCENT", v) // read by ApplyEnv below
			}
			if err := cli.ApplyEnv(fs, "ODOH"); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return tc.env[k] }
			if got := gcPercentApplies(fs, getenv); got != tc.apply || o.gcPercent != tc.want {
				t.Fatalf("applies %v, percent %d; want %v, %d", got, o.gcPercent, tc.apply, tc.want)
			}
		})
	}
}

package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	testCases := []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    Info
	}{{
		name: "no build info",
		want: Info{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()},
	}, {
		name:    "stamped version wins",
		version: "v0.1.0",
		bi: &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v9.9.9"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
				{Key: "vcs.modified", Value: "false"},
			},
		},
		want: Info{Version: "v0.1.0", Revision: "0123456789ab", GoVersion: "go1.26.8"},
	}, {
		name:    "module version and dirty tree",
		version: "",
		bi: &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "abcdef"},
				{Key: "vcs.modified", Value: "true"},
			},
		},
		want: Info{Version: "v1.2.3", Revision: "abcdef-dirty", GoVersion: "go1.26.8"},
	}, {
		name: "devel module without vcs",
		bi: &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "(devel)"},
		},
		want: Info{Version: "devel", Revision: "unknown", GoVersion: "go1.26.8"},
	}}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.version, tc.bi); got != tc.want {
				t.Errorf("fromBuildInfo() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v0.1.0", Revision: "abcdef", GoVersion: "go1.26.8"}
	const want = "odoh-target v0.1.0 (revision abcdef, go1.26.8)"
	if got := i.String("odoh-target"); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestRead(t *testing.T) {
	i := Read("v0.0.1")
	if i.Version != "v0.0.1" || i.GoVersion == "" || i.Revision == "" {
		t.Errorf("Read() = %+v", i)
	}
}

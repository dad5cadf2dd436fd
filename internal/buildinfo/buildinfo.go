// Package buildinfo reports which build of an odoh binary is running.
//
// The binaries print it for -version and export it as the
// <namespace>_build_info metric. To keep the package free of mutable state,
// nothing here is set with -ldflags -X: a main package may hold its own
//
//	var version string // set with -ldflags "-X main.version=v0.1.0"
//
// and pass it to [Read]. When that string is empty, the module version
// recorded by the Go toolchain is used (set by "go install module@version"),
// and "devel" otherwise. The revision comes from the VCS stamp that "go build"
// records (vcs.revision, shortened to 12 hex digits, with "-dirty" when the
// tree had local changes); it is "unknown" when the build had no VCS
// information (for example with -buildvcs=false).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Placeholders used when the build carries no information.
const (
	// UnknownVersion is the version of a build with no version information.
	UnknownVersion = "devel"
	// UnknownRevision is the revision of a build with no VCS information.
	UnknownRevision = "unknown"
)

// Info describes one build of a binary.
type Info struct {
	// Version is the release version, e.g. "v0.1.0", or "devel".
	Version string
	// Revision is the short VCS revision, e.g. "0123456789ab" or
	// "0123456789ab-dirty", or "unknown".
	Revision string
	// GoVersion is the Go toolchain that built the binary, e.g. "go1.26.8".
	GoVersion string
}

// Read returns the running binary's build information. version is the
// release version the main package was stamped with (empty if none); it wins
// over the module version recorded by the toolchain.
func Read(version string) Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(version, bi)
}

// fromBuildInfo is Read with the build information passed in, for tests.
func fromBuildInfo(version string, bi *debug.BuildInfo) Info {
	info := Info{
		Version:   version,
		Revision:  UnknownRevision,
		GoVersion: runtime.Version(),
	}
	if bi == nil {
		if info.Version == "" {
			info.Version = UnknownVersion
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = UnknownVersion
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		info.Revision = rev
	}
	return info
}

// String formats the information for a -version flag, for example
// "odoh-target v0.1.0 (revision 0123456789ab, go1.26.8)": every binary
// spells it so.
func (i Info) String(program string) string {
	return fmt.Sprintf("%s %s (revision %s, %s)", program, i.Version, i.Revision, i.GoVersion)
}

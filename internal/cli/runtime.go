package cli

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/pprof"
)

// DefaultGCPercent is the garbage collector target of the daemons. Their
// live heaps are a few megabytes and nearly all their garbage is per query
// (HPKE, HTTP/2, quic-go), so Go's default of 100 collects many times a
// second under load; 400 trades a few megabytes for less CPU per query
// (measured with the bench scripts: about a fifth for the proxy, 7–12 % for
// the stub and the target).
const DefaultGCPercent = 400

// DefaultMemoryLimit is the Go runtime's soft memory limit of the daemons,
// in MiB. At their default connection and request caps
// (internal/httpserve) a server's live memory stays near 600 MiB however
// clients behave; near the limit the collector works harder, rather than
// letting -gc-percent's heap growth take the process past 1 GiB.
const DefaultMemoryLimit = 800

// Runtime holds the flags that tune or observe the Go runtime of a daemon:
// -gc-percent, -memory-limit and -cpuprofile.
type Runtime struct {
	GCPercent  int
	MemoryMiB  int
	CPUProfile string

	fs     *flag.FlagSet
	prefix string
}

// AddFlags defines -gc-percent and -cpuprofile on fs; prefix is the
// environment prefix given to ApplyEnv (for the rule in Apply).
func (r *Runtime) AddFlags(fs *flag.FlagSet, prefix string) {
	r.fs, r.prefix = fs, prefix
	fs.IntVar(&r.GCPercent, "gc-percent", DefaultGCPercent, "Go garbage collector target `PERCENT` (as GOGC; used unless GOGC is set)")
	fs.IntVar(&r.MemoryMiB, "memory-limit", DefaultMemoryLimit, "Go soft memory limit in `MiB` (as GOMEMLIMIT; used unless GOMEMLIMIT is set; 0: none)")
	fs.StringVar(&r.CPUProfile, "cpuprofile", "", "write a Go CPU profile of the whole run to `FILE` (debugging; off by default)")
}

// gcApplies reports whether -gc-percent is to be used: when given (flag or
// environment variable), or when GOGC is unset; an explicit GOGC otherwise
// keeps its usual meaning.
func (r *Runtime) gcApplies(getenv func(string) string) bool {
	return r.applies("gc-percent", "GOGC", getenv)
}

// applies reports whether the flag name is to be used rather than the Go
// variable goVar: when given (flag or environment variable), or when
// goVar is unset.
func (r *Runtime) applies(name, goVar string, getenv func(string) string) bool {
	given := false
	r.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given || getenv(EnvName(r.prefix, name)) != "" || getenv(goVar) == ""
}

// Apply sets the GC target and starts the CPU profile, if asked; call it
// after ApplyEnv, and the returned stop before exiting (it writes the
// profile).
func (r *Runtime) Apply() (stop func(), err error) {
	if r.gcApplies(os.Getenv) {
		debug.SetGCPercent(r.GCPercent)
	}
	if r.applies("memory-limit", "GOMEMLIMIT", os.Getenv) {
		if r.MemoryMiB < 0 {
			return nil, fmt.Errorf("-memory-limit %d: want MiB, or 0 for none", r.MemoryMiB)
		}
		limit := int64(math.MaxInt64)
		if r.MemoryMiB > 0 {
			limit = int64(r.MemoryMiB) << 20
		}
		debug.SetMemoryLimit(limit)
	}
	if r.CPUProfile == "" {
		return func() {}, nil
	}
	return StartCPUProfile(r.CPUProfile)
}

// StartCPUProfile writes a CPU profile to path until the returned stop is
// called: a debugging aid for the benches, showing where a daemon spends
// its CPU per query, which /proc counters cannot.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

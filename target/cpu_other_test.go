//go:build !unix

package target_test

import "time"

// processCPU is unknown here: the benchmarks report no CPU per query.
func processCPU() time.Duration { return 0 }

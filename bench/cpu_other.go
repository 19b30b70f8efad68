//go:build !linux

package bench

import "time"

func cpuName() string { return "unknown CPU" }

// processCPU is 0 where it is not measured: the benchmarks then report no
// CPU time.
func processCPU() time.Duration { return 0 }

// processesCPU is 0 where /proc is not read.
func processesCPU([]int) time.Duration { return 0 }

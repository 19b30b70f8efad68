package bench

import (
	"slices"
	"testing"
	"time"
)

// benchRecords is the records per interval of the workload benchmarks.
const benchRecords = 200_000

// BenchmarkWorkload runs each workload's interval (window filled) on a manual
// clock, back to back, on local[2]: the engine's side of `dstream bench`
// without the search, so a regression shows in `go test -bench`.
func BenchmarkWorkload(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			cfg := Config{Workload: name, Batch: time.Second, Master: "local[2]", Window: Window}
			m, err := startManual(Workloads[name], cfg, NewPool(1<<20), benchRecords)
			if err != nil {
				b.Fatal(err)
			}
			defer m.ctx.Stop(false)
			for range 35 { // fill the window
				if err := m.next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var took []time.Duration
			cpu := processCPU()
			for b.Loop() {
				start := time.Now()
				if err := m.next(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, processCPU()-cpu)
			// The tail of the interval times: a sustained rate is held to
			// its slowest interval, not its mean.
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// reportCPU reports the process's CPU time per interval (cpu-ms), all
// threads: on a machine others share, the engine's two cores lose more
// wall time to them than the loop's one does, and records/s with them, while
// the CPU time an interval costs moves much less. Nothing where it is not
// measured.
func reportCPU(b *testing.B, used time.Duration) {
	if used > 0 {
		b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "cpu-ms")
	}
}

// BenchmarkBaseline is the hand-written single-threaded loop of each
// workload on the same intervals, for the ratio.
func BenchmarkBaseline(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			fn := Workloads[name].Baseline(Window, time.Second)
			pool := NewPool(1 << 20)
			var k int64
			for range 35 {
				k++
				fn(pool.Interval(k, benchRecords, 1))
			}
			cpu := processCPU()
			for b.Loop() {
				k++
				fn(pool.Interval(k, benchRecords, 1))
			}
			b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, processCPU()-cpu)
		})
	}
}

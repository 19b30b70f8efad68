package bench

import (
	"context"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/clock"
)

// benchRecords is the records per interval of the workload benchmarks.
const benchRecords = 200_000

// BenchmarkWorkload runs each workload's interval (window filled) on a manual
// clock, back to back, on local[2]: the engine's side of `dstream bench`
// without the search, so a regression shows in `go test -bench`.
func BenchmarkWorkload(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			w := Workloads[name]
			pool := NewPool(1 << 20)
			clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
			ctx, err := dstream.NewContext(dstream.Config{Master: "local[2]", BatchInterval: time.Second, Clock: clk, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			parts := ctx.Datasets().Parallelism()
			var k int64
			in := dstream.GeneratedStream(ctx, "generator", func(time.Time) [][]string {
				k++
				return pool.Interval(k, benchRecords, parts)
			})
			w.Build(in, Window, func(time.Time, int64) {})
			if err := ctx.Start(); err != nil {
				b.Fatal(err)
			}
			defer ctx.Stop(false)
			i := 0
			tick := func() {
				i++
				clk.Advance(time.Second)
				if err := ctx.AwaitBatch(context.Background(), ctx.StartTime().Add(time.Duration(i)*time.Second)); err != nil {
					b.Fatal(err)
				}
			}
			for range 35 {
				tick()
			}
			b.ResetTimer()
			for b.Loop() {
				tick()
			}
			b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
		})
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
			for b.Loop() {
				k++
				fn(pool.Interval(k, benchRecords, 1))
			}
			b.ReportMetric(float64(b.N*benchRecords)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

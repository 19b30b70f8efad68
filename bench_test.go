package dstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstream/dstream"
	"github.com/dstream/dstream/dstreamtest"
)

// BenchmarkWindowUpdate is one interval of an incremental 30 s window over
// 10k pairs on 1k keys: the reduce, the cogroup with the previous window and
// the leaving interval, and the state checkpoint.
func BenchmarkWindowUpdate(b *testing.B) {
	h := dstreamtest.New[dstream.Pair[string, int64]](b, dstreamtest.Options{})
	w := dstream.ReduceByKeyAndWindowInv(h.In, func(a, b int64) int64 { return a + b }, func(a, b int64) int64 { return a - b },
		30*time.Second, time.Second, 0, func(p dstream.Pair[string, int64]) bool { return p.Value > 0 })
	dstreamtest.Collect(dstream.Count(w))
	batch := make([]dstream.Pair[string, int64], 10_000)
	for i := range batch {
		batch[i] = dstream.KV(fmt.Sprintf("k%d", i%1000), int64(1))
	}
	for range 40 { // fill the window first
		h.Input.Push(batch...)
	}
	h.Start()
	for range 35 {
		h.Tick()
	}
	b.ResetTimer()
	for b.Loop() {
		h.Input.Push(batch...)
		h.Tick()
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEmptyInterval is the fixed cost of an interval with one output
// and no data: what bounds the shortest useful batch interval.
func BenchmarkEmptyInterval(b *testing.B) {
	h := dstreamtest.New[int](b, dstreamtest.Options{BatchInterval: 100 * time.Millisecond})
	dstreamtest.Collect(dstream.Count(h.In))
	h.Start()
	for b.Loop() {
		h.Tick()
	}
}
